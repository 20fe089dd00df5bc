//! The CIFAR-10 batch reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(dataset) = convgrad::data::cifar10_from_bytes("fuzz.bin", data) {
        assert_eq!(dataset.len() * 3073, data.len());
        assert!(dataset.labels().iter().all(|&label| label < 10));
    }
});
