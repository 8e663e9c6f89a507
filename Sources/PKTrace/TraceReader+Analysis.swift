extension TraceReader {
    /// Stored analyses, oldest saved first (so `.last` is the newest).
    public func analyses() throws -> [StoredAnalysis] {
        try withConnection { db in
            let q = try db.prepare("SELECT \(analysisColumns) FROM analysis ORDER BY rowid", "reading stored analyses")
            var out: [StoredAnalysis] = []
            while try q.step() { out.append(TraceReader.analysis(q)) }
            return out
        }
    }

    /// The analysis stored under `key`, or nil.
    public func analysis(key: String) throws -> StoredAnalysis? {
        try withConnection { db in
            let q = try db.prepare("SELECT \(analysisColumns) FROM analysis WHERE key = ?", "reading a stored analysis")
            try q.bind(1, key)
            return try q.step() ? TraceReader.analysis(q) : nil
        }
    }

    /// What the trace holds now, read in one statement (one read transaction, so the four values
    /// agree even while a writer appends): see `TraceBasis`.
    public func basis() throws -> TraceBasis {
        try withConnection { db in
            let q = try db.prepare("""
                SELECT (SELECT status FROM run WHERE id = 1), (SELECT max(step) FROM step),
                       (SELECT max(step) FROM checkpoint),
                       (SELECT checksum FROM checkpoint ORDER BY step DESC LIMIT 1)
                """, "reading the trace's last step and checkpoint")
            defer { q.reset() }
            _ = try q.step()
            guard let status = RunStatus(rawValue: q.text(0) ?? "") else {
                throw TraceError.corrupt(path: path, detail: "run status \"\(q.text(0) ?? "NULL")\" is not one of running, finished, diverged, aborted")
            }
            return TraceBasis(status: status, lastStep: q.isNull(1) ? nil : q.int(1),
                              lastCheckpoint: q.isNull(2) ? nil : q.int(2), checkpointChecksum: q.isNull(3) ? nil : q.int64(3))
        }
    }

    /// Version 3 added the basis columns; older traces read them as NULL.
    private var analysisColumns: String {
        let basis = schemaVersion >= 3 ? "basis_status, basis_last_step, basis_last_checkpoint, basis_checkpoint_checksum"
                                       : "NULL, NULL, NULL, NULL"
        return "key, settings_json, result_json, created_at, tool_version, " + basis
    }

    private static func analysis(_ q: SQLiteStatement) -> StoredAnalysis {
        let basis = RunStatus(rawValue: q.text(5) ?? "").map {
            TraceBasis(status: $0, lastStep: q.isNull(6) ? nil : q.int(6), lastCheckpoint: q.isNull(7) ? nil : q.int(7),
                       checkpointChecksum: q.isNull(8) ? nil : q.int64(8))
        }
        return StoredAnalysis(key: q.text(0) ?? "", settingsJSON: q.text(1) ?? "", resultJSON: q.text(2) ?? "",
                              createdAt: q.text(3) ?? "", toolVersion: q.text(4) ?? "", basis: basis)
    }
}
