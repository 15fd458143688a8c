//! What a model *is*, independent of the process that holds it: a digest of its tensors' paths,
//! shapes and values, and a check that every value is finite.
//!
//! Burn's serialised weights carry parameter ids, which differ between two processes that load
//! the same file; a run folder recognises "the same model" by [`model_digest`] instead.

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::DType;

use xxhash_rust::xxh3::Xxh3;

/// A digest (XXH3-64) of `model`'s architecture and weights: every tensor's path, dtype, shape and raw
/// values, in path order. Two models with equal digests compute the same function; parameter
/// ids, devices and the process they live in do not enter it.
///
/// # Errors
/// When a tensor cannot be read back from its device.
///
/// # Example
/// ```
/// use prunus_models::UNetConfig;
/// use prunus_surgery::model_digest;
/// let device = burn::tensor::Device::flex();
/// let config = UNetConfig::standard(3, 1, 4, 2);
/// let a = config.init(&device).unwrap();
/// let b = config.init(&device).unwrap();
/// assert_eq!(model_digest(&a).unwrap(), model_digest(&a.clone()).unwrap());
/// assert_ne!(model_digest(&a).unwrap(), model_digest(&b).unwrap()); // other random weights
/// ```
pub fn model_digest<M: Module>(model: &M) -> Result<u64, String> {
    let mut hash = Xxh3::new();
    each_tensor(model, |tensor, bytes| {
        hash.update(tensor.name.as_bytes());
        hash.update(format!("{:?}{:?}", tensor.dtype, tensor.shape).as_bytes());
        hash.update(bytes);
        None::<()>
    })?;
    Ok(hash.digest())
}

/// The path of the first tensor of `model` (in path order) that holds a NaN or infinite value,
/// with that value's index; `None` when every float is finite.
///
/// # Errors
/// When a tensor cannot be read back from its device.
pub fn first_non_finite<M: Module>(model: &M) -> Result<Option<(String, usize)>, String> {
    each_tensor(model, |tensor, bytes| {
        let bad = match tensor.dtype {
            DType::F32 => bytes
                .chunks_exact(4)
                .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
            DType::F64 => bytes
                .chunks_exact(8)
                .position(|c| !f64::from_le_bytes(c.try_into().expect("8 bytes")).is_finite()),
            _ => None,
        };
        bad.map(|index| (tensor.name.clone(), index))
    })
}

/// Calls `visit` on every tensor of `model` and its raw bytes, in path order, until it returns
/// `Some`, which is returned.
fn each_tensor<M: Module, T>(
    model: &M,
    mut visit: impl FnMut(&PackTensor, &[u8]) -> Option<T>,
) -> Result<Option<T>, String> {
    let mut tensors = model.collect(None, None, false);
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for tensor in &tensors {
        let bytes = tensor
            .to_bytes()
            .map_err(|e| format!("{}: cannot read the tensor: {e}", tensor.name))?;
        if let Some(found) = visit(tensor, &bytes) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::{Device, Tensor, TensorData};
    use prunus_models::UNetConfig;

    /// `param` with its element `index` replaced by `f(old value)`.
    fn edited(param: &Param<Tensor<4>>, index: usize, f: impl Fn(f32) -> f32) -> Param<Tensor<4>> {
        let w = param.val();
        let mut data = w.to_data().try_to_vec::<f32>().unwrap();
        data[index] = f(data[index]);
        let (shape, device) = (w.shape(), w.device());
        param
            .clone()
            .map(|_| Tensor::from_data(TensorData::new(data, shape), &device))
    }

    #[test]
    fn digest_survives_a_round_trip_through_bytes_and_sees_one_changed_value() {
        let device = Device::flex();
        let net = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
        let file = crate::ModelFile::original(crate::Network::UNet(net.clone()), [16, 16]).unwrap();
        let back =
            crate::ModelFile::<crate::Network>::from_bytes(&file.to_bytes().unwrap(), &device)
                .unwrap();
        let crate::Network::UNet(back) = back.network else {
            panic!("a U-Net")
        };
        assert_eq!(model_digest(&net).unwrap(), model_digest(&back).unwrap());

        let mut changed = net.clone();
        let weight = &mut changed.encoder[0].conv1.conv.weight;
        *weight = edited(weight, 7, |v| v + 1e-6);
        assert_ne!(model_digest(&net).unwrap(), model_digest(&changed).unwrap());
        assert_eq!(first_non_finite(&changed).unwrap(), None);
    }

    #[test]
    fn a_nan_weight_is_found_by_path_and_index() {
        let device = Device::flex();
        let mut net = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
        let weight = &mut net.decoder[0].conv2.conv.weight;
        *weight = edited(weight, 5, |_| f32::NAN);
        let (path, index) = first_non_finite(&net).unwrap().expect("a NaN");
        assert!(
            path.contains("decoder") && path.ends_with("weight"),
            "{path}"
        );
        assert_eq!(index, 5);
    }
}
