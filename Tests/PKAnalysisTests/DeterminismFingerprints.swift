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
        #"{"kind":"gd","learningRate":0.2}|C=1"#: 0x7dfdc6afd82cb0ed,
        #"{"kind":"gd","learningRate":0.2}|C=3"#: 0x3e4ea7b5147ac6f9,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=1"#: 0xb9ba5b9a7b74de64,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=3"#: 0x3b0bc1d266df89f3,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=1"#: 0x71692338d83dc09,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=3"#: 0xcda4c6beab733c41,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=1"#: 0xf4885b10d5cc84f1,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=3"#: 0xa1bd279bac8b5a5b,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=1"#: 0x74d31a089369ca58,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=3"#: 0x407b488ff040d7ed,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=1"#: 0x64d8a00b533ecad0,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=3"#: 0x38b9c93983d8ab7c,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=1"#: 0x727d522862708e58,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=3"#: 0x49db7e0f0dbc3752,
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"clipNorm":0.3}"#: 0x931ce662f60e515,  // path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD, recorded clip scales
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3}"#: 0x5c20eeaf5c0c2c07,  // two-time path kernel (momentum 0.8), exact
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}|tol"#: 0xb3321387c6865b6c,  // two-time path kernel (momentum 0.8), tail < 1e-06
        #"{"kind":"gd","learningRate":0.2,"momentum":0.9,"weightDecay":0.01}|f32|tol"#: 0x256719694fc49019,  // two-time path kernel (momentum 0.9), exact
        #"{"kind":"rmsprop","learningRate":0.01,"alpha":0.9}"#: 0xfd07a4cee935fce1,  // preconditioned path kernel (RMSProp): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02}"#: 0x7a431b5dbd455689,  // preconditioned path kernel (AdamW): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01}|f32"#: 0xff2e5e81b3ae56d,  // preconditioned path kernel (Adam): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|nostate"#: 0xd9b41652df2e5332,  // none: the exact decomposition by the JVP route only (see the notes)
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|resumed"#: 0xf30f01a8586b67dc,  // none: the exact decomposition by the JVP route only (see the notes)
    ]
}
