import Testing
@testable import PKAnalysis

/// The registry of kernel machines (`KernelMachines.all`): the report's order, and which machines
/// apply to which analyses (scope exact; runs analyzed by the JVP route only).
@Suite("Kernel machine registry")
struct KernelMachineRegistryTests {
    @Test func orderAndApplicability() {
        let names = { (rules: [any KernelMachineRule]) in rules.map(\.name) }
        #expect(names(KernelMachines.all) == ["exact", "path-km", "path-km-self", "path-krr", "ntk0-lin", "ntk0-km", "ntkinf-km", "ntkT-krr"])
        #expect(Set(names(KernelMachines.all)).count == KernelMachines.all.count)
        #expect(names(KernelMachines.applicable(fullScope: true, kernelForm: true)) == names(KernelMachines.all))
        #expect(names(KernelMachines.applicable(fullScope: false, kernelForm: true)) == ["exact", "path-km"])
        #expect(names(KernelMachines.applicable(fullScope: true, kernelForm: false)) == ["exact", "ntk0-lin", "ntk0-km", "ntkinf-km", "ntkT-krr"])
        #expect(names(KernelMachines.applicable(fullScope: false, kernelForm: false)) == ["exact"])
    }
}
