//! What the linked MLX is and which devices it sees, through the few mlx-c calls
//! that mlx-rs does not wrap.

use std::ffi::CStr;

/// MLX's own version string, e.g. "0.32.2".
pub fn version() -> Option<String> {
    // SAFETY: mlx_string is created, read and freed here; the C string is copied out.
    unsafe {
        let mut s = mlx_sys::mlx_string_new();
        let ok = mlx_sys::mlx_version(&mut s) == 0;
        let text = ok.then(|| CStr::from_ptr(mlx_sys::mlx_string_data(s)).to_string_lossy().into_owned());
        mlx_sys::mlx_string_free(s);
        text
    }
}

/// Whether arrays are computed on the CPU backend (the default device is the CPU).
pub fn default_device_is_cpu() -> Result<bool, mlx_rs::error::Exception> {
    Ok(matches!(mlx_rs::Device::try_default()?.get_type()?, mlx_rs::DeviceType::Cpu))
}

/// Number of devices of a kind that this MLX build can use (0 when the backend is absent).
pub fn device_count(kind: mlx_rs::DeviceType) -> usize {
    let mut count = 0;
    // SAFETY: writes one int.
    let rc = unsafe { mlx_sys::mlx_device_count(&mut count, kind.into()) };
    if rc == 0 {
        count.max(0) as usize
    } else {
        0
    }
}

/// The device's name as MLX reports it (e.g. "NVIDIA H100 80GB HBM3"), when it has one.
pub fn device_name(kind: mlx_rs::DeviceType, index: i32) -> Option<String> {
    // SAFETY: the device and info objects are freed before returning; the name is
    // copied out first.
    unsafe {
        let device = mlx_sys::mlx_device_new_type(kind.into(), index);
        let mut info = mlx_sys::mlx_device_info_new();
        let mut name = None;
        if mlx_sys::mlx_device_info_get(&mut info, device) == 0 {
            let mut ptr: *const std::os::raw::c_char = std::ptr::null();
            if mlx_sys::mlx_device_info_get_string(&mut ptr, info, c"device_name".as_ptr()) == 0
                && !ptr.is_null()
            {
                name = Some(CStr::from_ptr(ptr).to_string_lossy().into_owned());
            }
        }
        mlx_sys::mlx_device_info_free(info);
        mlx_sys::mlx_device_free(device);
        name
    }
}

/// GPU backends compiled into this MLX build.
pub fn gpu_backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    let mut yes = false;
    // SAFETY: each call writes one bool.
    if unsafe { mlx_sys::mlx_cuda_is_available(&mut yes) } == 0 && yes {
        backends.push("cuda");
    }
    yes = false;
    if unsafe { mlx_sys::mlx_metal_is_available(&mut yes) } == 0 && yes {
        backends.push("metal");
    }
    backends
}
