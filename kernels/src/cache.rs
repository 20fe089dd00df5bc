//! The size of the host's per-core L2 cache, which sets how much of an operand the blocked
//! kernels keep close while another streams past it.
//!
//! Read once from Linux's sysfs (`/sys/devices/system/cpu/cpu0/cache/index*/`); elsewhere, or if
//! the files say nothing usable, the 512 KiB of the AMD host most of BENCHMARKS.md was measured
//! on. The value is clamped to 256 KiB..=4 MiB, so a strange reading cannot size a block
//! absurdly.

use std::sync::OnceLock;

/// Assumed when the size cannot be read.
const DEFAULT_L2_BYTES: usize = 512 << 10;

/// Bytes of L2 cache per core.
pub(crate) fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| {
        read_l2_bytes()
            .unwrap_or(DEFAULT_L2_BYTES)
            .clamp(256 << 10, 4 << 20)
    })
}

/// The first level-2 data or unified cache that sysfs lists for cpu0.
fn read_l2_bytes() -> Option<usize> {
    let root = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    (0..8).find_map(|index| {
        let dir = root.join(format!("index{index}"));
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let is_l2 = read("level")?.trim() == "2";
        let holds_data = matches!(read("type")?.trim(), "Unified" | "Data");
        if !(is_l2 && holds_data) {
            return None;
        }
        parse_size(read("size")?.trim())
    })
}

/// A sysfs cache size such as `2048K` or `1M` (or a bare number of bytes) in bytes.
fn parse_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let value: usize = digits.parse().ok()?;
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        _ => return None,
    };
    value.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("2048K"), Some(2 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("524288"), Some(512 << 10));
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size("K"), None);
    }

    #[test]
    fn the_l2_size_is_within_its_clamp() {
        let bytes = l2_bytes();
        assert!((256 << 10..=4 << 20).contains(&bytes), "{bytes}");
    }
}
