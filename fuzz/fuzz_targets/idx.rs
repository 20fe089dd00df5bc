//! The IDX reader on arbitrary bytes. The first byte picks the case: a raw file of labels or
//! images, or the rest gzipped first so that the header the reader trusts least sits inside a
//! valid gzip stream (raw bytes starting with `1f 8b` exercise corrupt gzip streams).
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ndims = if mode & 1 == 0 { 1 } else { 3 };
    let bytes = if mode & 2 == 0 {
        rest.to_vec()
    } else {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(rest).unwrap();
        encoder.finish().unwrap()
    };
    if let Ok(array) = convgrad::data::idx_from_bytes("fuzz", bytes, ndims) {
        assert_eq!(array.dims.len(), ndims);
        assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
    }
});
