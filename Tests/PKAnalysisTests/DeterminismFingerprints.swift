/// The analyses of `DeterminismTests` as the analyzer gave them before it read its kernel routes
/// from the optimizer chain's `KernelForm` (commit cbb0afe, where the routes were chosen by
/// `OptimizerSpec.kind`, `isPlainGradientDescent` and `momentum > 0`): the 7 optimizers × 1 and 3
/// outputs of `repeatedAnalysesAreBitIdentical`, keyed `"<optimizer JSON>|C=<outputs>"`, and the 9
/// further routes of `everyRouteKeepsItsBits` (clipped SGD, dampening exact and windowed, float32,
/// RMSProp without momentum, AdamW with λ = 0, checkpoint resolution, a resumed run), keyed by
/// the case. Each value is `DeterminismTests.fnv1a` (64-bit FNV-1a over the words, each as 8
/// little-endian bytes) of the case's `DeterminismTests.fingerprint`: the analysis result's JSON
/// (sorted keys, run time zeroed) and then the path kernel's bits.
///
/// Printed afresh in session 8 for the attribution in output units (every result's attribution
/// gained `component`, `pushed_up`, …; the other figures are computed as before), after the
/// merges of exact quadrature on every route and the `ntkinf-km` machine; two runs printed the same.
///
/// Printed afresh again for issue 12 (every result gained the `ntkinf-km` machine, computed or
/// skipped with a note; the other figures' bits are unchanged by it); two runs printed the same.
///
/// Printed afresh in session 7 (after the factored momentum route, the per-chunk GEMMs of the
/// backward route and group learning rates had changed the momentum and Adam bits, and with the
/// C kernel `pk_scaled_combination`, checked bit for bit against the Swift loop it replaced), first
/// produced on cbb0afe plus this test code (debug build, this project's machine) by
///     PATHKERNEL_PRINT_FINGERPRINTS=1 swift test --skip-build --filter DeterminismTests
/// and pasting the printed lines here (the comments name each route's kernel). Two runs printed
/// the same. The bits depend on the BLAS build's GEMM rounding: where OpenBLAS picks other
/// kernels they differ for correct code, so CI does not compare them (machines of this type
/// differ). They are a refactoring aid: `PATHKERNEL_CHECK_FINGERPRINTS=1 swift test --skip-build
/// --filter DeterminismTests` compares on the machine that printed them; print them afresh
/// (on the commit before a refactoring) before relying on them elsewhere.
enum DeterminismFingerprints {
    static let expected: [String: UInt64] = [
        #"{"kind":"gd","learningRate":0.2}|C=1"#: 0x728d93f4496a45fb,
        #"{"kind":"gd","learningRate":0.2}|C=3"#: 0xc24e946d70b45e4d,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=1"#: 0x84a8d2987e8381c3,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=3"#: 0x672990667c496dbf,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=1"#: 0x8904000c59e78dd3,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=3"#: 0x309812409f75cf65,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=1"#: 0x207aa4668c8ea3e4,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=3"#: 0xa70fc02c679e1439,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=1"#: 0xd47eb0813615bb30,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=3"#: 0x71021597e21a2d65,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=1"#: 0x627dd63078b6b7c6,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=3"#: 0xda680462fc19c432,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=1"#: 0x4b51f5c2d6dd1b48,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=3"#: 0x89db8f86d32c3e9e,
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"clipNorm":0.3}"#: 0x2c3e49ebd08488f5,  // path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD, recorded clip scales
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3}"#: 0x1a109b9866949c0f,  // two-time path kernel (momentum 0.8), exact
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}|tol"#: 0xa1723570366bbb3d,  // two-time path kernel (momentum 0.8), tail < 1e-06
        #"{"kind":"gd","learningRate":0.2,"momentum":0.9,"weightDecay":0.01}|f32|tol"#: 0xb358fa475d6543e1,  // two-time path kernel (momentum 0.9), exact
        #"{"kind":"rmsprop","learningRate":0.01,"alpha":0.9}"#: 0xdc6a61bb1bd6c21c,  // preconditioned path kernel (RMSProp): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02}"#: 0x778ab66e0f2bf3e2,  // preconditioned path kernel (AdamW): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01}|f32"#: 0xb7e99a971258a0e3,  // preconditioned path kernel (Adam): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|nostate"#: 0xdb71caf42ddb07ac,  // none: the exact decomposition by the JVP route only (see the notes)
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|resumed"#: 0x905f8e45ad42a682,  // none: the exact decomposition by the JVP route only (see the notes)
    ]
}
