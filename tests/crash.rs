//! Crash safety of `convgrad train`: the real binary is killed with SIGKILL at random steps of
//! an epoch, at random instants, and while each of its files is half written (a test hook makes
//! the writer pause between the complete temporary file and the rename). After every kill the
//! checkpoint on disk must load and `metrics.csv` must parse; `--resume` must then finish with
//! exactly the metrics and parameters of an uninterrupted run of the same seed.
//!
//! The data is a small synthetic dataset in Fashion-MNIST's IDX layout, written by the test, so
//! a run takes about a second. The kill schedule is drawn from a seed printed at the start
//! (`CONVGRAD_CRASH_SEED` replays one).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use convgrad::io::atomic::{partial_path, FAULT_MARKER, FAULT_PAUSE_ENV};
use convgrad::train::{from_csv, load_checkpoint};

const EPOCHS: usize = 3;
const TRAIN_IMAGES: usize = 960;
const BATCH: usize = 32;
const STEPS: usize = TRAIN_IMAGES / BATCH;

/// xorshift64*: enough randomness for a kill schedule, no dependency.
struct Schedule(u64);

impl Schedule {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("convgrad-crash-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// 28x28 images whose class is a bright bar at a class-dependent row, with noise.
fn write_dataset(dir: &Path) {
    let mut noise = Schedule(0x5eed);
    for (prefix, count) in [("train", TRAIN_IMAGES), ("t10k", 200)] {
        let labels: Vec<u8> = (0..count).map(|i| (i * 7 % 10) as u8).collect();
        let mut pixels = Vec::with_capacity(count * 784);
        for &label in &labels {
            for row in 0..28 {
                for _ in 0..28 {
                    let bar = if row / 2 == usize::from(label) + 2 {
                        200
                    } else {
                        0
                    };
                    pixels.push(bar + noise.below(50) as u8);
                }
            }
        }
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx(&[count as u32, 28, 28], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx(&[count as u32], &labels),
        )
        .unwrap();
    }
}

fn train_command(data: &Path, out: &Path, resume: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_convgrad"));
    command
        .args(["train", "lenet5", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out);
    command.args([
        "--epochs",
        &EPOCHS.to_string(),
        "--batch-size",
        &BATCH.to_string(),
        "--seed",
        "11",
        "--threads",
        "2",
        "--log-every",
        "1",
    ]);
    if resume {
        command.arg("--resume");
    }
    command.env_remove(FAULT_PAUSE_ENV);
    command
}

/// A running child with its stdout and stderr lines arriving on one channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
}

fn spawn(mut command: Command) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start convgrad train");
    let (send, lines) = channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let send_err = send.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = send_err.send(line);
        }
    });
    Running { child, lines }
}

impl Running {
    /// Waits for a line satisfying `wanted`; `None` if the process ended first. Panics after a
    /// minute.
    fn wait_for(&mut self, mut wanted: impl FnMut(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if wanted(&line) => return Some(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    assert!(Instant::now() < deadline, "convgrad train hangs");
                }
            }
        }
    }

    fn kill(mut self) {
        // SIGKILL on Unix: no destructor, no flush, no cleanup runs in the child.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn finish(mut self) -> String {
        let mut all = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            all.push(line);
        }
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "convgrad train failed:\n{}",
            all.join("\n")
        );
        all.join("\n")
    }
}

/// `epoch E step B/N` of a `--log-every` line.
fn step_of(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("epoch ")?;
    let (epoch, rest) = rest.split_once(" step ")?;
    let (step, _) = rest.split_once('/')?;
    Some((epoch.parse().ok()?, step.parse().ok()?))
}

/// What must hold after any kill: the checkpoint, if there is one, loads and carries the history
/// of exactly its epochs; metrics.csv, if there is one, parses. Returns the checkpoint's epoch.
fn check_files(out: &Path) -> usize {
    let metrics = out.join("metrics.csv");
    if metrics.exists() {
        let text = std::fs::read_to_string(&metrics).unwrap();
        from_csv(&metrics, &text).expect("metrics.csv parses after a kill");
    }
    let path = out.join("checkpoint.safetensors");
    if !path.exists() {
        return 0;
    }
    let checkpoint = load_checkpoint(&path).expect("the checkpoint loads after a kill");
    let epoch = checkpoint.epoch(&path).unwrap();
    let history = checkpoint
        .history(&path)
        .unwrap()
        .expect("history in the checkpoint");
    assert_eq!(history.len(), epoch);
    assert!((1..=EPOCHS).contains(&epoch));
    epoch
}

/// The columns of metrics.csv that a run determines (not its timings).
fn deterministic_columns(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            [0, 1, 2, 3, 4, 6].map(|i| fields[i]).join(",")
        })
        .collect()
}

#[test]
fn killed_runs_resume_to_exactly_the_uninterrupted_result() {
    let seed = std::env::var("CONVGRAD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill schedule seed: CONVGRAD_CRASH_SEED={seed}");
    let mut schedule = Schedule(seed);
    let data = TempDir::new("data");
    write_dataset(&data.0);

    let reference = TempDir::new("reference");
    let started = Instant::now();
    spawn(train_command(&data.0, &reference.0, false)).finish();
    let run_time = started.elapsed();
    let expected = deterministic_columns(&reference.0);
    assert_eq!(expected.len(), EPOCHS + 1);

    let out = TempDir::new("killed");
    let out = &out.0;
    let checkpoint = out.join("checkpoint.safetensors");
    let resume = |pause: Option<&str>| {
        let mut command = train_command(&data.0, out, true);
        if let Some(name) = pause {
            command.env(FAULT_PAUSE_ENV, name);
        }
        spawn(command)
    };
    // Kills in the middle of an epoch, at a random step of the epoch the run is in.
    let mut kill_mid_epoch = |done: usize| {
        let step = 1 + schedule.below(STEPS as u64 - 1) as usize;
        let mut run = resume(None);
        let line = run.wait_for(|line| step_of(line).is_some_and(|(_, s)| s == step));
        let (epoch, _) = step_of(&line.expect("the run reaches the step")).unwrap();
        run.kill();
        assert_eq!(
            epoch,
            done + 1,
            "the resumed run continues after epoch {done}"
        );
        assert_eq!(
            check_files(out),
            done,
            "a kill inside an epoch keeps the last checkpoint"
        );
    };
    // Kills while `file` is written, after its temporary file is complete.
    let kill_mid_write = |file: &str| {
        let mut run = resume(Some(file));
        let marker = run.wait_for(|line| line.starts_with(FAULT_MARKER));
        assert!(marker.is_some(), "the run paused before renaming {file}");
        let partial = partial_path(&out.join(file));
        assert!(
            partial.exists(),
            "{} exists while paused",
            partial.display()
        );
        run.kill();
        check_files(out)
    };

    kill_mid_epoch(0);
    assert!(!checkpoint.exists());
    // The first checkpoint is complete on disk but not yet renamed: there is still no checkpoint.
    assert_eq!(kill_mid_write("checkpoint.safetensors"), 0);
    assert!(!checkpoint.exists());
    kill_mid_epoch(0);
    // Killed after the checkpoint of epoch 1 was committed, while metrics.csv was written.
    assert_eq!(kill_mid_write("metrics.csv"), 1);
    kill_mid_epoch(1);
    assert_eq!(kill_mid_write("curves.svg"), 2);
    // Killed while writing the checkpoint of epoch 3: epoch 2's stays.
    assert_eq!(kill_mid_write("checkpoint.safetensors"), 2);
    // And at random instants, from process start to about a run's length.
    for _ in 0..8 {
        let run = resume(None);
        std::thread::sleep(Duration::from_millis(
            schedule.below(run_time.as_millis() as u64),
        ));
        run.kill();
        check_files(out);
    }

    let log = resume(None).finish();
    assert_eq!(check_files(out), EPOCHS, "{log}");
    assert_eq!(
        deterministic_columns(out),
        expected,
        "the resumed run's metrics differ from the uninterrupted run's"
    );
    let a = load_checkpoint(&reference.0.join("checkpoint.safetensors")).unwrap();
    let b = load_checkpoint(&checkpoint).unwrap();
    assert_eq!(a.params, b.params);
    assert_eq!(a.optimizer, b.optimizer);
    for file in ["checkpoint.safetensors", "metrics.csv", "curves.svg"] {
        assert!(
            !partial_path(&out.join(file)).exists(),
            "{file}.partial left behind"
        );
    }
}
