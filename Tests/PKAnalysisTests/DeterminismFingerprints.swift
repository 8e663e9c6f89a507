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
/// Produced on cbb0afe plus this test code (debug build, this project's machine) by
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
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=1"#: 0x62dba06cb3009010,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=3"#: 0x28ad805624090a9e,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=1"#: 0x66e244910ae711a0,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=3"#: 0x4236b5b3fd5b7abf,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=1"#: 0xf4885b10d5cc84f1,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=3"#: 0xa1bd279bac8b5a5b,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=1"#: 0xa31cc09ce3a1e38,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=3"#: 0x7af4a9e4b6d46a3d,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=1"#: 0xabce0496d40d7475,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=3"#: 0x4c25a70e7a8c550e,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=1"#: 0x3bb68074e2858170,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=3"#: 0x85562a2645a0dd4b,
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"clipNorm":0.3}"#: 0x931ce662f60e515,  // path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD, recorded clip scales
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3}"#: 0xacba58e2ae070a84,  // two-time path kernel (momentum 0.8), exact
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}|tol"#: 0xb3321387c6865b6c,  // two-time path kernel (momentum 0.8), tail < 1e-06
        #"{"kind":"gd","learningRate":0.2,"momentum":0.9,"weightDecay":0.01}|f32|tol"#: 0x533120c968886e16,  // two-time path kernel (momentum 0.9), exact
        #"{"kind":"rmsprop","learningRate":0.01,"alpha":0.9}"#: 0x23161da92d03cc2b,  // preconditioned path kernel (RMSProp): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02}"#: 0x1061479e084330c9,  // preconditioned path kernel (AdamW): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01}|f32"#: 0x3fa8351ae43f384e,  // preconditioned path kernel (Adam): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|nostate"#: 0xd9b41652df2e5332,  // none: the exact decomposition by the JVP route only (see the notes)
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|resumed"#: 0xf30f01a8586b67dc,  // none: the exact decomposition by the JVP route only (see the notes)
    ]
}
