//! The safetensors reader (and the f32 conversion of every dtype it accepts) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = convgrad::io::safetensors_from_bytes("fuzz.safetensors", data) {
        for (_, tensor) in &file.tensors {
            assert_eq!(
                tensor.shape().iter().product::<usize>(),
                tensor.data().len()
            );
        }
    }
});
