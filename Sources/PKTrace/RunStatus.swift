/// The lifecycle of a recorded run, stored in `run.status`.
///
/// A trace is created `running`; the writer sets exactly one of the terminal states when the run
/// ends. A trace whose writer was killed stays `running` forever: "running" therefore means
/// "running, or killed before it could say otherwise" (compare `run.updated_at` with the clock).
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    /// Still being written, or the writer died without setting a terminal state.
    case running
    /// All planned steps done; the final checkpoint is stored.
    case finished
    /// Training produced a non-finite loss or parameters; stopped.
    case diverged
    /// Stopped early by the user or by an error (a full disk, for instance).
    case aborted
}
