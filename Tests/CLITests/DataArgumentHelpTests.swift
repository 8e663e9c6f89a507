import Foundation
import Testing
import PKTraining

/// `cntk`, `ntrf` and `bandit` read `--data` with one parser (`DataArgument`); their `--help`
/// describes it in the same words (`DataArgument.forms`, `DataArgument.optionHelp`), and each
/// refuses a bad `--data` with the parser's one line.
@Suite("The --data argument of cntk, ntrf and bandit")
struct DataArgumentHelpTests {
    /// White space folded, so that a line break of the help's wrapping does not count.
    private func folded(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    }

    @Test(arguments: ["cntk", "ntrf", "bandit"])
    func helpSaysTheSharedForms(command: String) throws {
        let r = try CLI.run([command, "--help"])
        #expect(r.status == 0)
        let help = folded(r.stdout)
        #expect(help.contains(folded(DataArgument.forms)), "\(command) --help: \(r.stdout)")
        #expect(help.contains(folded(DataArgument.optionHelp)), "\(command) --help: \(r.stdout)")
        for line in r.stdout.split(separator: "\n") { #expect(line.count <= 80, "wider than 80 columns: \(line)") }
    }

    @Test(arguments: [
        ["cntk", "--data", "moons-mpl"],
        ["ntrf", "--data", "moons-mpl", "--depth", "2", "--width", "8", "--radius", "1"],
        ["bandit", "--data", "moons-mpl", "--algo", "uniform", "--rounds", "5"],
    ])
    func badDataFailsWithTheParsersLine(args: [String]) throws {
        CLIBadInputTests.assertCleanFailure(try CLI.run(args), mentions: ["did you mean 'moons-mlp'", "--data takes"])
    }
}
