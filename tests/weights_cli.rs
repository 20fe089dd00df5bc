//! `convgrad infer`, `gradients` and `predict` end to end, on the committed LeNet-5 PyTorch
//! fixture (`tests/fixtures/torch/lenet5`, made by `scripts/torch_fixtures.py --small`), and
//! their errors for the wrong files: each names what was expected and what was found, and none
//! panics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use convgrad::graph::ParamStore;
use convgrad::io::{read_safetensors, write_safetensors};
use convgrad::models::{self, weights::save_weights};
use convgrad::{Rng, Tensor};

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch/lenet5")
        .join(file)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convgrad-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn convgrad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convgrad"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must fail cleanly (exit code 1, not a panic's 101) and returns stderr.
fn fails(args: &[&str]) -> String {
    let out = convgrad(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    stderr
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn infer_writes_pytorchs_logits() {
    let dir = temp_dir("infer");
    let output = dir.join("logits.safetensors");
    let (weights, io) = (fixture("weights.safetensors"), fixture("io.safetensors"));
    let args = [
        "infer",
        "lenet5",
        "--weights",
        path(&weights),
        "--input",
        path(&io),
        "--output",
        path(&output),
    ];
    let out = convgrad(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = read_safetensors(&output).unwrap();
    let theirs = read_safetensors(&io).unwrap();
    let (ours, theirs) = (ours.get("logits").unwrap(), theirs.get("logits").unwrap());
    assert_eq!(ours.shape(), &[2, 10]);
    let largest = theirs.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(ours.max_abs_diff(theirs).unwrap() <= 1e-4 * largest);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gradients_prints_a_table_and_writes_pytorchs_gradients() {
    let dir = temp_dir("grads");
    let output = dir.join("grads.safetensors");
    let (weights, io) = (fixture("weights.safetensors"), fixture("io.safetensors"));
    let args = [
        "gradients",
        "lenet5",
        "--weights",
        path(&weights),
        "--input",
        path(&io),
        "--output",
        path(&output),
    ];
    let out = convgrad(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for layer in ["conv1", "conv2", "fc1", "fc2", "fc3"] {
        assert!(table.lines().any(|l| l.starts_with(layer)), "{table}");
    }
    let ours = read_safetensors(&output).unwrap();
    let theirs = read_safetensors(fixture("grads.safetensors")).unwrap();
    let expected_loss = read_safetensors(&io).unwrap().get("loss").unwrap().data()[0];
    let loss = ours.get("loss").unwrap().data()[0];
    assert!(
        (loss - expected_loss).abs() <= 1e-5 * expected_loss,
        "{loss} {expected_loss}"
    );
    assert_eq!(ours.tensors.len(), theirs.tensors.len() + 1);
    for (name, grad) in &theirs.tensors {
        let mine = ours
            .get(name)
            .unwrap_or_else(|| panic!("{name} not written"));
        let scale = grad.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(mine.max_abs_diff(grad).unwrap() <= 1e-4 * scale, "{name}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn wrong_files_are_errors_that_say_what_was_expected_and_found() {
    let dir = temp_dir("errors");
    let out = dir.join("out.safetensors");
    let (weights, io) = (fixture("weights.safetensors"), fixture("io.safetensors"));

    // The weights file given as the input.
    let err = fails(&[
        "infer",
        "lenet5",
        "--weights",
        path(&weights),
        "--input",
        path(&weights),
        "--output",
        path(&out),
    ]);
    assert!(
        err.contains("no tensor 'input' (expected [N, C, H, W]); found conv1"),
        "{err}"
    );

    // Weights of another model.
    let err = fails(&[
        "infer",
        "resnet18",
        "--weights",
        path(&weights),
        "--input",
        path(&io),
        "--output",
        path(&out),
    ]);
    assert!(err.contains("these look like weights for lenet5"), "{err}");

    // A truncated weights file.
    let bytes = std::fs::read(&weights).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&[
        "infer",
        "lenet5",
        "--weights",
        path(&truncated),
        "--input",
        path(&io),
        "--output",
        path(&out),
    ]);
    assert!(err.contains("truncated: its header describes"), "{err}");

    // A class count that the weights do not have.
    let err = fails(&[
        "infer",
        "lenet5",
        "--weights",
        path(&weights),
        "--input",
        path(&io),
        "--output",
        path(&out),
        "--classes",
        "1000",
    ]);
    assert!(
        err.contains("--classes 1000 was asked for, but these weights have 10"),
        "{err}"
    );

    // gradients with an input but no targets, then with a target that is not a class.
    let input = read_safetensors(&io).unwrap().get("input").unwrap().clone();
    let no_target = dir.join("no_target.safetensors");
    let named = [("input".to_string(), &input)];
    write_safetensors(&no_target, &named, &HashMap::new()).unwrap();
    let err = fails(&[
        "gradients",
        "lenet5",
        "--weights",
        path(&weights),
        "--input",
        path(&no_target),
    ]);
    assert!(
        err.contains("no tensor 'target' (expected [2] class indices)"),
        "{err}"
    );
    let target = Tensor::from_vec(vec![3.0, 10.0], &[2]).unwrap();
    let named = [
        ("input".to_string(), &input),
        ("target".to_string(), &target),
    ];
    write_safetensors(&no_target, &named, &HashMap::new()).unwrap();
    let err = fails(&[
        "gradients",
        "lenet5",
        "--weights",
        path(&weights),
        "--input",
        path(&no_target),
    ]);
    assert!(
        err.contains("'target' holds 10, not a class index in 0..10"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn predict_prints_the_top_classes_of_each_image() {
    let dir = temp_dir("predict");
    let graph = models::build("mobilenet_v2", 1000).unwrap();
    let store = ParamStore::init(&graph, &mut Rng::seed(7));
    let weights = dir.join("mobilenet_v2.safetensors");
    save_weights(&weights, &store).unwrap();
    let (wide, tall) = (dir.join("wide.png"), dir.join("tall.jpg"));
    image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 128]))
        .save(&wide)
        .unwrap();
    image::RgbImage::from_fn(120, 260, |x, y| image::Rgb([200, x as u8, y as u8]))
        .save(&tall)
        .unwrap();
    let out = convgrad(&[
        "predict",
        "mobilenet_v2",
        "--weights",
        path(&weights),
        path(&wide),
        path(&tall),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 2 * 6, "{stdout}");
    assert!(
        stdout
            .lines()
            .nth(1)
            .unwrap()
            .trim_start()
            .starts_with("1. "),
        "{stdout}"
    );

    let not_an_image = dir.join("notes.png");
    std::fs::write(&not_an_image, b"hello").unwrap();
    let err = fails(&[
        "predict",
        "mobilenet_v2",
        "--weights",
        path(&weights),
        path(&not_an_image),
    ]);
    assert!(err.contains("cannot decode the image"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
