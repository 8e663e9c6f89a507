extension TraceReader {
    /// Stored analyses, oldest saved first (so `.last` is the newest).
    public func analyses() throws -> [StoredAnalysis] {
        try withConnection { db in
            let q = try db.prepare("SELECT key, settings_json, result_json, created_at, tool_version FROM analysis ORDER BY rowid",
                                   "reading stored analyses")
            var out: [StoredAnalysis] = []
            while try q.step() { out.append(TraceReader.analysis(q)) }
            return out
        }
    }

    /// The analysis stored under `key`, or nil.
    public func analysis(key: String) throws -> StoredAnalysis? {
        try withConnection { db in
            let q = try db.prepare("SELECT key, settings_json, result_json, created_at, tool_version FROM analysis WHERE key = ?",
                                   "reading a stored analysis")
            try q.bind(1, key)
            return try q.step() ? TraceReader.analysis(q) : nil
        }
    }

    private static func analysis(_ q: SQLiteStatement) -> StoredAnalysis {
        StoredAnalysis(key: q.text(0) ?? "", settingsJSON: q.text(1) ?? "", resultJSON: q.text(2) ?? "",
                       createdAt: q.text(3) ?? "", toolVersion: q.text(4) ?? "")
    }
}
