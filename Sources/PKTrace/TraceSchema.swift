import Foundation

/// One step of the schema's history: literal SQL, identified by version and name.
///
/// Migrations are append-only: a released migration is never edited or removed, a change to the
/// format is a new migration with the next version. `schema_migrations` records each applied one.
struct Migration: Sendable {
    var version: Int
    var name: String
    var sql: String
}

/// The trace format's identity and schema history.
enum TraceSchema {
    /// `PRAGMA application_id`: the bytes "PKTR" (0x504B5452) at offset 68 of the file header.
    static let applicationID: Int32 = 0x504B_5452

    /// Page size set before the first table is created (large pages suit multi-megabyte blobs).
    static let pageSize = 65_536

    /// The ordered schema history this build knows. Readers refuse traces whose
    /// `MAX(schema_migrations.version)` exceeds the last version here.
    static let migrations: [Migration] = [
        Migration(version: 1, name: "v1-initial", sql: """
            CREATE TABLE run (
                id               INTEGER PRIMARY KEY CHECK (id = 1),
                tool_version     TEXT NOT NULL,
                name             TEXT NOT NULL,
                seed             INTEGER NOT NULL,
                status           TEXT NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'aborted')),
                status_message   TEXT,
                created_at       TEXT NOT NULL,
                updated_at       TEXT NOT NULL,
                finished_at      TEXT,
                task             TEXT NOT NULL CHECK (task IN ('regression', 'binary', 'multiclass')),
                num_outputs      INTEGER NOT NULL CHECK (num_outputs >= 1),
                model_json       TEXT NOT NULL,
                loss_json        TEXT NOT NULL,
                optimizer_json   TEXT NOT NULL,
                config_json      TEXT NOT NULL,
                precision        TEXT NOT NULL CHECK (precision IN ('float64', 'float32')),
                checkpoint_every INTEGER NOT NULL CHECK (checkpoint_every >= 1),
                planned_steps    INTEGER NOT NULL CHECK (planned_steps >= 0)
            );
            CREATE TABLE data (
                split    TEXT NOT NULL CHECK (split IN ('train', 'test')),
                role     TEXT NOT NULL CHECK (role IN ('x', 'y')),
                dtype    TEXT NOT NULL CHECK (dtype = 'float64'),
                shape    TEXT NOT NULL,
                data     BLOB NOT NULL,
                checksum INTEGER NOT NULL,
                PRIMARY KEY (split, role)
            );
            CREATE TABLE parameter_layout (
                position INTEGER PRIMARY KEY,
                name     TEXT NOT NULL UNIQUE,
                shape    TEXT NOT NULL,
                offset   INTEGER NOT NULL CHECK (offset >= 0),
                count    INTEGER NOT NULL CHECK (count >= 0)
            );
            CREATE TABLE checkpoint (
                step       INTEGER PRIMARY KEY CHECK (step >= 0),
                dtype      TEXT NOT NULL CHECK (dtype IN ('float64', 'float32')),
                count      INTEGER NOT NULL,
                params     BLOB NOT NULL,
                checksum   INTEGER NOT NULL,
                created_at TEXT NOT NULL
            );
            CREATE TABLE step (
                step          INTEGER PRIMARY KEY CHECK (step >= 0),
                epoch         INTEGER NOT NULL,
                learning_rate REAL NOT NULL,
                batch_size    INTEGER NOT NULL,
                batch         BLOB NOT NULL,
                loss          REAL
            );
            CREATE TABLE analysis (
                key           TEXT PRIMARY KEY,
                settings_json TEXT NOT NULL,
                result_json   TEXT NOT NULL,
                created_at    TEXT NOT NULL,
                tool_version  TEXT NOT NULL
            );
            """),
        Migration(version: 2, name: "v2-optimizer-state", sql: """
            CREATE TABLE optimizer_state (
                step     INTEGER PRIMARY KEY CHECK (step >= 0),
                names    TEXT NOT NULL,
                count    INTEGER NOT NULL CHECK (count >= 0),
                dtype    TEXT NOT NULL CHECK (dtype = 'float64'),
                data     BLOB NOT NULL,
                checksum INTEGER NOT NULL
            );
            ALTER TABLE step ADD COLUMN clip_scale REAL;
            """),
        Migration(version: 3, name: "v3-analysis-basis", sql: """
            ALTER TABLE analysis ADD COLUMN basis_status TEXT;
            ALTER TABLE analysis ADD COLUMN basis_last_step INTEGER;
            ALTER TABLE analysis ADD COLUMN basis_last_checkpoint INTEGER;
            ALTER TABLE analysis ADD COLUMN basis_checkpoint_checksum INTEGER;
            """),
        Migration(version: 4, name: "v4-parameter-mask", sql: """
            CREATE TABLE parameter_mask (
                id       INTEGER PRIMARY KEY CHECK (id = 1),
                count    INTEGER NOT NULL CHECK (count >= 0),
                data     BLOB NOT NULL,
                checksum INTEGER NOT NULL
            );
            """),
    ]

    static var latestVersion: Int { migrations.last?.version ?? 0 }

    static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )
        """

    /// `MAX(version)` of `schema_migrations`, 0 for an empty table; nil if the table is missing.
    static func currentVersion(_ db: SQLiteConnection) throws -> Int? {
        let exists = try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                                      "reading the schema") ?? 0
        guard exists > 0 else { return nil }
        return try db.scalarInt("SELECT MAX(version) FROM schema_migrations", "reading the schema version") ?? 0
    }

    /// Applies, each in its own transaction, every migration newer than the file's version.
    /// Throws `schemaTooNew` if the file is ahead of `migrations`. Returns the resulting version.
    ///
    /// Two writers may open an older trace at once (two `pathkernel analyze`): each migration's
    /// transaction (`BEGIN IMMEDIATE`, so the writers take turns) reads the version again and
    /// skips a migration the other writer applied in the meantime.
    @discardableResult
    static func migrate(_ db: SQLiteConnection, migrations: [Migration] = TraceSchema.migrations) throws -> Int {
        try db.exec(createMigrationsTable, "creating schema_migrations")
        let current = try currentVersion(db) ?? 0
        let known = migrations.last?.version ?? 0
        if current > known { throw TraceError.schemaTooNew(path: db.path, found: current, supported: known) }
        for m in migrations where m.version > current {
            try db.transaction("applying schema migration \(m.version) (\(m.name))") {
                if let now = try currentVersion(db), now >= m.version { return }   // applied by another writer
                try db.exec(m.sql, "applying schema migration \(m.version) (\(m.name))")
                let ins = try db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                         "recording schema migration \(m.version)")
                try ins.bind(1, m.version)
                try ins.bind(2, m.name)
                try ins.bind(3, timestamp())
                try ins.step()
            }
        }
        return max(current, known)
    }

    /// Now, as ISO-8601 UTC with second precision: `2025-01-31T12:00:00Z`.
    static func timestamp(_ date: Date = Date()) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ldZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1,
                      Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }
}
