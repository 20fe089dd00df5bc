//! The argument parser under random argument vectors: clap must answer every vector with a
//! parsed command or an error, never a panic (a panic here would be a broken definition, such as
//! two options with one name, that only some argument combinations reveal).

use clap::{CommandFactory, Parser};
use proptest::prelude::*;

use super::Cli;

/// Words the parser knows, values of the right and wrong kind, and noise.
const VOCABULARY: &[&str] = &[
    "models",
    "summary",
    "dot",
    "compare-conv",
    "train",
    "eval",
    "help",
    "lenet5",
    "resnet18",
    "--classes",
    "--input",
    "--aux",
    "--in-channels",
    "--out-channels",
    "--size",
    "--kernel",
    "--batch",
    "--repeats",
    "--dataset",
    "--data",
    "--image-size",
    "--channels",
    "--epochs",
    "--batch-size",
    "--optimizer",
    "--lr",
    "--momentum",
    "--weight-decay",
    "--schedule",
    "--seed",
    "--threads",
    "--out",
    "--resume",
    "--max-batches",
    "--log-every",
    "--checkpoint",
    "--help",
    "-h",
    "--version",
    "-V",
    "--",
    "-",
    "--lr=",
    "--epochs=3",
    "fashion-mnist",
    "cifar10",
    "folder",
    "sgd",
    "adamw",
    "rmsprop",
    "3,224,224",
    "1,28,28",
    "0,0,0",
    "0",
    "1",
    "-1",
    "3e-3",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "18446744073709551616",
    "cosine",
    "step:1:0.1",
    "",
    " ",
    "\u{0}",
    "é",
    "--\u{fffd}",
];

fn argument() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(VOCABULARY).prop_map(str::to_string),
        1 => any::<String>(),
        1 => "--[a-z-]{0,12}(=.{0,6})?",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_argument_vectors_parse_or_fail_cleanly(
        args in proptest::collection::vec(argument(), 0..8)
    ) {
        let argv = std::iter::once("convgrad".to_string()).chain(args);
        // Ok or Err are both fine; a panic fails the test.
        let _ = Cli::try_parse_from(argv);
    }

    #[test]
    fn random_train_options_parse_or_fail_cleanly(
        args in proptest::collection::vec(argument(), 0..10)
    ) {
        let argv = ["convgrad", "train", "lenet5"].map(String::from).into_iter().chain(args);
        let _ = Cli::try_parse_from(argv);
    }
}

#[test]
fn the_command_definition_is_consistent() {
    // clap's own checks (duplicate names, conflicting settings), which it otherwise runs lazily.
    Cli::command().debug_assert();
}

#[test]
fn bad_values_are_errors_that_say_what_was_wrong() {
    for (argv, expected) in [
        (&["convgrad", "train", "lenet5", "--epochs", "-1"][..], "-1"),
        (&["convgrad", "train", "lenet5", "--lr", "fast"], "--lr"),
        (
            &["convgrad", "train", "lenet5", "--dataset", "imagenet"],
            "imagenet",
        ),
        (
            &["convgrad", "summary", "lenet5", "--input", "0,0,0"],
            "C,H,W",
        ),
        (&["convgrad", "compare-conv", "--size"], "--size"),
    ] {
        let Err(err) = Cli::try_parse_from(argv) else {
            panic!("{argv:?} parsed");
        };
        let text = err.to_string();
        assert!(text.contains(expected), "{argv:?}: {text}");
    }
}
