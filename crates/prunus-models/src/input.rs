//! Input checks shared by the networks.

use crate::ModelError;

/// Checks `[batch, channels, height, width]` against a network with `in_channels` inputs and
/// `downsamplings` halvings of the resolution.
pub(crate) fn check_input(
    model: &'static str,
    shape: [usize; 4],
    in_channels: usize,
    downsamplings: usize,
) -> Result<(), ModelError> {
    let [batch, channels, height, width] = shape;
    let error = |reason: String| {
        Err(ModelError::InvalidInput {
            model,
            shape,
            reason,
        })
    };
    if batch == 0 {
        return error("the batch is empty".into());
    }
    if channels != in_channels {
        return error(format!("expected {in_channels} channels, got {channels}"));
    }
    let multiple = 1usize << downsamplings;
    if height == 0 || width == 0 || height % multiple != 0 || width % multiple != 0 {
        return error(format!(
            "height and width must be positive multiples of {multiple} \
             ({downsamplings} down-samplings by 2), got {height}×{width}"
        ));
    }
    Ok(())
}
