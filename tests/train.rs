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
fn an_exploding_loss_names_its_step_and_layer_and_keeps_the_last_checkpoint() {
    require_fashion_mnist();
    // SGD at 0.01 for epoch 1, then at 0.01 * 1e14 = 1e12 (a step schedule with gamma 1e14):
    // epoch 1 ends with a good checkpoint, epoch 2 explodes.
    let config = |out: PathBuf, epochs: usize| TrainConfig {
        epochs,
        out_dir: out,
        max_batches: Some(20),
        optimizer: convgrad::train::OptimizerKind::Sgd,
        lr: 0.01,
        schedule: "step:1:1e14".into(),
        ..TrainConfig::new("lenet5")
    };
    let out = out_dir("explode");
    let err = train(&config(out.clone(), 2), &mut Quiet).unwrap_err();
    let text = err.to_string();
    let convgrad::Error::NonFinite { step, node, .. } = &err else {
        panic!("expected Error::NonFinite, got {err:?}");
    };
    // Epoch 2's steps are 21..=40; the update of its first step cannot show before step 21.
    assert!((21..=40).contains(step), "{text}");
    assert!(
        text.contains(&format!("step {step}")) && text.contains("epoch 2"),
        "{text}"
    );
    // The layer where the first NaN or infinity appeared, by its graph node (or parameter) name.
    let graph = convgrad::models::build_with(
        "lenet5",
        &convgrad::models::ModelConfig::new(10).input([1, 28, 28]),
    )
    .unwrap();
    let known = graph.nodes().iter().any(|n| n.name == *node)
        || graph.param_specs().iter().any(|p| p.name == *node);
    assert!(
        known,
        "'{node}' is not a node or parameter of lenet5: {text}"
    );
    assert!(text.contains(&format!("'{node}'")), "{text}");
    assert!(text.contains("the last good checkpoint is kept"), "{text}");
    // The checkpoint on disk is epoch 1's, exactly as a run that stops after epoch 1 leaves it.
    let kept = load_checkpoint(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(kept.epoch(&out).unwrap(), 1);
    let one_epoch = out_dir("explode-reference");
    train(&config(one_epoch.clone(), 1), &mut Quiet).unwrap();
    let reference = load_checkpoint(&one_epoch.join("checkpoint.safetensors")).unwrap();
    assert_eq!(kept.params, reference.params);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&one_epoch).unwrap();
}
