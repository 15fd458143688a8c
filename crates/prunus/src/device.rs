//! Choosing the Burn device by name.

use burn::tensor::Device;

/// The environment variable that names the device, as in Burn.
pub const DEVICE_ENV: &str = "BURN_DEVICE";

/// A device name that cannot give a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A name prunus does not know.
    #[error("unknown device `{0}`: expected one of flex, ndarray, wgpu, wgpu:N, default")]
    Unknown(String),
    /// A known backend this build was compiled without.
    #[error("device `{0}` is not compiled into this build: enable the `{0}` feature of prunus")]
    NotCompiled(&'static str),
}

/// The device a name stands for: `flex`, `ndarray`, `wgpu` (the best adapter wgpu finds, a
/// GPU when there is one), or `default`.
///
/// `default` is the device named by `BURN_DEVICE` when it is set, and otherwise Flex, the fast
/// CPU backend (a GPU is used only when asked for, so a run never lands on a slow software
/// adapter by surprise). Names are case-insensitive and may be surrounded by spaces.
///
/// # Errors
/// [`DeviceError::Unknown`] for any other name, and [`DeviceError::NotCompiled`] for a backend
/// whose feature is off.
///
/// # Example
/// ```
/// use prunus::{DeviceError, device};
///
/// let cpu = device("flex").unwrap();
/// assert_eq!(cpu, burn::tensor::Device::flex());
/// assert!(matches!(device("tpu"), Err(DeviceError::Unknown(_))));
/// ```
pub fn device(name: &str) -> Result<Device, DeviceError> {
    let name = name.trim().to_ascii_lowercase();
    if let Some(index) = name.strip_prefix("wgpu:") {
        let index = index
            .trim()
            .parse()
            .map_err(|_| DeviceError::Unknown(name.clone()))?;
        return wgpu_gpu(index);
    }
    match name.as_str() {
        "flex" => flex(),
        "ndarray" => ndarray(),
        "wgpu" => wgpu(),
        "default" => match std::env::var(DEVICE_ENV) {
            Ok(env) if !env.trim().eq_ignore_ascii_case("default") && !env.trim().is_empty() => {
                device(&env)
            }
            _ => default_cpu(),
        },
        _ => Err(DeviceError::Unknown(name.to_string())),
    }
}

/// Several devices from a comma-separated list of [`device`] names, in order; a name may repeat
/// (`flex,flex`: two training threads on the one CPU). `wgpu:N` is the N-th discrete GPU.
///
/// # Errors
/// As [`device`] for each name; [`DeviceError::Unknown`] for an empty list.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// let two = prunus::devices("flex, flex").unwrap();
/// assert_eq!(two, [Device::flex(), Device::flex()]);
/// ```
pub fn devices(list: &str) -> Result<Vec<Device>, DeviceError> {
    if list.trim().is_empty() {
        return Err(DeviceError::Unknown(list.to_string()));
    }
    list.split(',').map(device).collect()
}

/// The device named by `BURN_DEVICE`, or Flex when it is unset; the same as `device("default")`.
///
/// # Errors
/// As [`device`], for the name `BURN_DEVICE` holds.
pub fn device_from_env() -> Result<Device, DeviceError> {
    device("default")
}

/// A short readable name for a device, for reports and logs: `flex (CPU)`, `ndarray (CPU)`, or
/// `wgpu (ADAPTER)` with the adapter's own name (`NVIDIA H200`, `llvmpipe (LLVM 15.0.7, 256 bits)`).
/// An autodiff device is named as the device it runs on. Naming a wgpu device opens it.
///
/// # Example
/// ```
/// use prunus::{device, device_label};
///
/// let cpu = device("flex").unwrap();
/// assert_eq!(device_label(&cpu), "flex (CPU)");
/// assert_eq!(device_label(&cpu.autodiff()), "flex (CPU)");
/// ```
pub fn device_label(device: &Device) -> String {
    let device = device.clone().without_autodiff();
    let debug = format!("{device:?}");
    let variant = debug
        .strip_prefix("Device<")
        .unwrap_or(&debug)
        .split(['(', '>', ' '])
        .next()
        .unwrap_or_default();
    match variant {
        "Flex" => "flex (CPU)".into(),
        "NdArray" => "ndarray (CPU)".into(),
        "Cube" => cube_label(&device),
        _ => debug,
    }
}

#[cfg(feature = "wgpu")]
fn cube_label(device: &Device) -> String {
    match device.identity() {
        Some(id) => format!("wgpu ({})", id.name),
        None => "wgpu".into(),
    }
}

#[cfg(not(feature = "wgpu"))]
fn cube_label(device: &Device) -> String {
    format!("{device:?}")
}

fn default_cpu() -> Result<Device, DeviceError> {
    flex().or_else(|_| ndarray()).or_else(|_| wgpu())
}

fn flex() -> Result<Device, DeviceError> {
    #[cfg(feature = "flex")]
    return Ok(Device::flex());
    #[cfg(not(feature = "flex"))]
    Err(DeviceError::NotCompiled("flex"))
}

#[allow(deprecated)] // NdArray is deprecated upstream but remains a supported CPU backend here.
fn ndarray() -> Result<Device, DeviceError> {
    #[cfg(feature = "ndarray")]
    return Ok(Device::ndarray());
    #[cfg(not(feature = "ndarray"))]
    Err(DeviceError::NotCompiled("ndarray"))
}

fn wgpu_gpu(index: usize) -> Result<Device, DeviceError> {
    #[cfg(feature = "wgpu")]
    return Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)));
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = index;
        Err(DeviceError::NotCompiled("wgpu"))
    }
}

fn wgpu() -> Result<Device, DeviceError> {
    #[cfg(feature = "wgpu")]
    return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
    #[cfg(not(feature = "wgpu"))]
    Err(DeviceError::NotCompiled("wgpu"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_and_space_insensitive() {
        assert_eq!(device(" FLEX ").unwrap(), Device::flex());
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let err = device("cuda0").unwrap_err();
        assert_eq!(err, DeviceError::Unknown("cuda0".into()));
        assert!(err.to_string().contains("cuda0"));
    }

    #[test]
    #[allow(deprecated)]
    fn labels_name_the_backend() {
        assert_eq!(device_label(&Device::ndarray()), "ndarray (CPU)");
        assert_eq!(device_label(&Device::flex().autodiff()), "flex (CPU)");
    }

    #[test]
    #[allow(deprecated)]
    fn each_compiled_backend_has_a_name() {
        assert_eq!(device("ndarray").unwrap(), Device::ndarray());
        assert!(device("wgpu").is_ok());
    }
}
