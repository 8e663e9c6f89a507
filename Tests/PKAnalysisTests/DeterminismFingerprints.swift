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
        #"{"kind":"gd","learningRate":0.2}|C=1"#: 0xbc0a7d752ee4130c,
        #"{"kind":"gd","learningRate":0.2}|C=3"#: 0xfa1e985205e25066,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=1"#: 0x316b758e0cd3b7ec,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}|C=3"#: 0x94fc723835d560bb,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=1"#: 0x1ac4adab7f2c8451,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|C=3"#: 0xd9804914c5e1e859,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=1"#: 0x5c11cdf35f1374d9,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}|tol|C=3"#: 0xea62b38ca0e4213,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=1"#: 0x8780c819a02135d5,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}|C=3"#: 0x785adafc4a378bf8,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=1"#: 0x7e0ca54671a0c4d2,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|C=3"#: 0x5fa031723d39a092,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=1"#: 0x5037d6d359848145,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}|C=3"#: 0x5f069aeb0cfe3963,
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"clipNorm":0.3}"#: 0x383bc6e02b056965,  // path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD, recorded clip scales
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3}"#: 0x1409e431c9d68645,  // two-time path kernel (momentum 0.8), exact
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}|tol"#: 0x725f0e2fcda6ca24,  // two-time path kernel (momentum 0.8), tail < 1e-06
        #"{"kind":"gd","learningRate":0.2,"momentum":0.9,"weightDecay":0.01}|f32|tol"#: 0x8281c6d07319add1,  // two-time path kernel (momentum 0.9), exact
        #"{"kind":"rmsprop","learningRate":0.01,"alpha":0.9}"#: 0xd1b3a2f5c686db06,  // preconditioned path kernel (RMSProp): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02}"#: 0xa49a78df6809d791,  // preconditioned path kernel (AdamW): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01}|f32"#: 0x19d40fd03887e14,  // preconditioned path kernel (Adam): J̄_t(x) D J(x_i; w_s)ᵀ, exact
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|nostate"#: 0xdb71caf42ddb07ac,  // none: the exact decomposition by the JVP route only (see the notes)
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|resumed"#: 0x905f8e45ad42a682,  // none: the exact decomposition by the JVP route only (see the notes)
    ]
}
