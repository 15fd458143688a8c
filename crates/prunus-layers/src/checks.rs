//! Argument checks shared by the gated layers.

pub(crate) fn check_channels(kind: &str, channels: [usize; 2]) {
    assert!(
        channels[0] > 0 && channels[1] > 0,
        "{kind} needs at least one input and one output channel, got {channels:?}"
    );
}

pub(crate) fn check_kernel(kind: &str, kernel_size: usize, stride: usize) {
    assert!(kernel_size > 0, "{kind} needs a kernel size ≥ 1");
    assert!(stride > 0, "{kind} needs a stride ≥ 1");
}
