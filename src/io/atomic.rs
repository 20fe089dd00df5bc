//! Atomic file replacement for everything convgrad writes (safetensors files, and a training
//! run's checkpoint, `metrics.csv` and `curves.svg`): the bytes go to `.NAME.partial` beside the target, are flushed to disk, and the
//! temporary file is renamed over the target, and the directory is flushed so that the rename
//! itself survives a power cut. A run killed at any instant leaves the old file or the new one,
//! never a mixture; a stale `.partial` left by a killed run is overwritten by the next write.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Test hook: when this environment variable is set and the target's file name contains its
/// value, the writer stops after the temporary file is complete and before the rename, prints
/// [`FAULT_MARKER`] and the paths on stderr, and waits a minute, so that a test can kill the
/// process at exactly that point. Nothing sets it outside tests.
pub const FAULT_PAUSE_ENV: &str = "CONVGRAD_FAULT_PAUSE_BEFORE_RENAME";
/// What the hook of [`FAULT_PAUSE_ENV`] prints before pausing.
pub const FAULT_MARKER: &str = "convgrad-fault: paused before rename";

/// The temporary file [`write_atomic`] writes before renaming it to `path`.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.partial"))
}

/// Replaces `path` with `bytes` atomically (see the module documentation).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = partial_path(path);
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let result = (|| {
        let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
        file.write_all(bytes).map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        drop(file);
        fault_pause(path, &temporary);
        fs::rename(&temporary, path).map_err(io_error(path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Not every file system lets a directory be opened and synced; the data is safe
            // either way, only the rename's durability across a power cut depends on it.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn fault_pause(path: &Path, temporary: &Path) {
    let Some(pattern) = std::env::var_os(FAULT_PAUSE_ENV) else {
        return;
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if name.contains(pattern.to_string_lossy().as_ref()) {
        eprintln!(
            "{FAULT_MARKER}: {} -> {}",
            temporary.display(),
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_partial_file() {
        let dir = std::env::temp_dir().join(format!("convgrad-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        write_atomic(&path, b"one").unwrap();
        // A partial file left by a killed run does not get in the way.
        fs::write(partial_path(&path), b"half of tw").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!partial_path(&path).exists());
        assert_eq!(partial_path(&path), dir.join(".metrics.csv.partial"));
        // A directory that does not exist is an I/O error naming the temporary file.
        let err = write_atomic(&dir.join("absent/x"), b"").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
