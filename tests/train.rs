//! Training on real data: Fashion-MNIST from the Debian package `dataset-fashion-mnist`
//! (`apt-get install dataset-fashion-mnist`; the README's test command installs it).

use std::path::{Path, PathBuf};

use convgrad::train::{load_checkpoint, train, Quiet, TrainConfig};

fn require_fashion_mnist() {
    let dir = Path::new(convgrad::data::FASHION_MNIST_DIR);
    assert!(
        dir.join("train-images-idx3-ubyte.gz").exists(),
        "these tests need Fashion-MNIST in {}: run `apt-get update && apt-get install -y \
         dataset-fashion-mnist` (the README's test command does)",
        dir.display()
    );
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convgrad-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn lenet5_reaches_85_percent_on_fashion_mnist_in_one_epoch() {
    require_fashion_mnist();
    let out = out_dir("lenet");
    let config = TrainConfig {
        epochs: 1,
        out_dir: out.clone(),
        ..TrainConfig::new("lenet5")
    };
    let report = train(&config, &mut Quiet).unwrap();
    let epoch = report.metrics[0];
    assert!(
        epoch.test_acc >= 0.85,
        "test accuracy {:.4}",
        epoch.test_acc
    );
    assert!(
        epoch.train_loss.is_finite() && epoch.test_loss < 0.5,
        "{epoch:?}"
    );
    // What a run leaves behind.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,train_loss,train_acc,test_loss,test_acc,seconds"));
    assert_eq!(csv.lines().count(), 2);
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("<polyline"));
    let checkpoint = load_checkpoint(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(checkpoint.epoch(&out).unwrap(), 1);
    assert!(!checkpoint.optimizer.is_empty());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn resuming_gives_exactly_the_uninterrupted_run() {
    require_fashion_mnist();
    let base = |out: PathBuf, epochs: usize, resume: bool| TrainConfig {
        epochs,
        out_dir: out,
        resume,
        max_batches: Some(40),
        seed: 7,
        ..TrainConfig::new("lenet5")
    };
    let straight = out_dir("straight");
    let whole = train(&base(straight.clone(), 3, false), &mut Quiet).unwrap();
    let interrupted = out_dir("interrupted");
    train(&base(interrupted.clone(), 1, false), &mut Quiet).unwrap();
    let resumed = train(&base(interrupted.clone(), 3, true), &mut Quiet).unwrap();
    for (a, b) in whole.metrics.iter().zip(&resumed.metrics) {
        assert_eq!(a.epoch, b.epoch);
        assert_eq!(
            a.train_loss.to_bits(),
            b.train_loss.to_bits(),
            "epoch {}",
            a.epoch
        );
        assert_eq!(
            a.test_loss.to_bits(),
            b.test_loss.to_bits(),
            "epoch {}",
            a.epoch
        );
        assert_eq!(a.test_acc, b.test_acc);
    }
    let a = load_checkpoint(&straight.join("checkpoint.safetensors")).unwrap();
    let b = load_checkpoint(&interrupted.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.params, b.params);
    assert_eq!(a.optimizer, b.optimizer);
    // A resumed run must be the same experiment.
    let other = TrainConfig {
        lr: 0.1,
        ..base(interrupted.clone(), 4, true)
    };
    let err = train(&other, &mut Quiet).unwrap_err().to_string();
    assert!(err.contains("convgrad.lr"), "{err}");
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&interrupted).unwrap();
}

#[test]
fn an_exploding_loss_stops_training_and_keeps_the_last_checkpoint() {
    require_fashion_mnist();
    let out = out_dir("explode");
    let config = TrainConfig {
        epochs: 1,
        out_dir: out.clone(),
        max_batches: Some(20),
        ..TrainConfig::new("lenet5")
    };
    train(&config, &mut Quiet).unwrap();
    let before = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let exploding = TrainConfig {
        epochs: 2,
        resume: true,
        lr: 1e12,
        ..config.clone()
    };
    // A different lr is a different experiment; start afresh in another directory instead.
    let out2 = out_dir("explode2");
    let err = train(
        &TrainConfig {
            out_dir: out2.clone(),
            resume: false,
            optimizer: convgrad::train::OptimizerKind::Sgd,
            ..exploding
        },
        &mut Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("the loss became") && err.contains("step"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        before
    );
    std::fs::remove_dir_all(&out).unwrap();
    let _ = std::fs::remove_dir_all(&out2);
}
