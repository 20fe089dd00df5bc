//! The zoo against torchvision/timm: parameter names, shapes and counts, output shapes on the
//! smallest accepted input, a training step on a tape for the small models, and graph errors.

use std::collections::BTreeMap;

use convgrad::graph::ParamStore;
use convgrad::models::{self, ModelConfig, MODELS};
use convgrad::nn::{Mode, ParamKind};
use convgrad::{Rng, Tape, Tensor};

/// `tests/fixtures/manifest.txt` (made by `scripts/torch_manifest.py`): model -> [(name, shape, kind)].
fn manifest() -> BTreeMap<String, Vec<(String, Vec<usize>, String)>> {
    let text = include_str!("fixtures/manifest.txt");
    let mut models: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "bad manifest line {line:?}");
        let shape = if fields[2].is_empty() {
            vec![]
        } else {
            fields[2].split(',').map(|d| d.parse().unwrap()).collect()
        };
        models.entry(fields[0].to_string()).or_default().push((
            fields[1].to_string(),
            shape,
            fields[3].to_string(),
        ));
    }
    models
}

/// The manifest's name for a zoo configuration.
fn manifest_key(name: &str, aux: bool) -> String {
    if aux {
        format!("{name}_aux")
    } else {
        name.to_string()
    }
}

#[test]
fn names_and_shapes_match_torchvision_exactly() {
    let manifest = manifest();
    let mut checked = 0;
    for info in MODELS {
        if info.name == "lenet5" {
            continue; // not in torchvision
        }
        for aux in [false, true] {
            let Some(expected) = manifest.get(&manifest_key(info.name, aux)) else {
                continue;
            };
            let graph = info
                .build(&ModelConfig::new(1000).aux_logits(aux))
                .unwrap_or_else(|e| panic!("{}: {e}", info.name));
            let ours: Vec<(String, Vec<usize>, String)> = graph
                .param_specs()
                .iter()
                .map(|p| {
                    let kind = match p.spec.kind {
                        ParamKind::Trainable => "param",
                        ParamKind::Buffer => "buffer",
                    };
                    (p.name.clone(), p.spec.shape.clone(), kind.to_string())
                })
                .collect();
            let sort = |mut v: Vec<(String, Vec<usize>, String)>| {
                v.sort();
                v
            };
            let (ours, theirs) = (sort(ours), sort(expected.clone()));
            let missing: Vec<_> = theirs.iter().filter(|t| !ours.contains(t)).collect();
            let extra: Vec<_> = ours.iter().filter(|o| !theirs.contains(o)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{} (aux {aux}): missing {missing:?}\nunexpected {extra:?}",
                info.name
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn the_zoo_covers_every_torchvision_model_of_the_manifest() {
    let manifest = manifest();
    let zoo_keys: Vec<String> = MODELS
        .iter()
        .flat_map(|m| [manifest_key(m.name, false), manifest_key(m.name, true)])
        .collect();
    let unbuilt: Vec<&String> = manifest.keys().filter(|k| !zoo_keys.contains(k)).collect();
    assert!(
        unbuilt.is_empty(),
        "manifest models missing from the zoo: {unbuilt:?}"
    );
}

#[test]
fn parameter_counts_match_the_reference_table() {
    // LeNet-5 at its 10 classes; the rest at ImageNet's 1000.
    assert_eq!(
        models::build("lenet5", 10).unwrap().parameter_count(),
        61_706
    );
    let table: &[(&str, bool, usize)] = &[
        ("alexnet", false, 61_100_840),
        ("vgg11", false, 132_863_336),
        ("vgg13", false, 133_047_848),
        ("vgg16", false, 138_357_544),
        ("vgg19", false, 143_667_240),
        ("vgg16_bn", false, 138_365_992),
        ("googlenet", false, 6_624_904),
        ("inception_v3", false, 23_834_568),
        ("inception_v3", true, 27_161_264),
        ("resnet18", false, 11_689_512),
        ("resnet34", false, 21_797_672),
        ("resnet50", false, 25_557_032),
        ("resnet101", false, 44_549_160),
        ("resnet152", false, 60_192_808),
        ("xception", false, 22_855_952),
        ("densenet121", false, 7_978_856),
        ("densenet161", false, 28_681_000),
        ("densenet169", false, 14_149_480),
        ("densenet201", false, 20_013_928),
        ("mobilenet_v1", false, 4_231_976),
        ("mobilenet_v2", false, 3_504_872),
    ];
    for &(name, aux, expected) in table {
        if models::info(name).is_err() {
            continue; // reported by the_zoo_covers_every_torchvision_model_of_the_manifest
        }
        let graph = models::build_with(name, &ModelConfig::new(1000).aux_logits(aux))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(graph.parameter_count(), expected, "{name} (aux {aux})");
    }
}

#[test]
fn every_model_runs_on_its_smallest_input_and_small_datasets() {
    for info in MODELS {
        let smallest = [info.standard_input[0], info.min_size, info.min_size];
        for (input, classes) in [
            (smallest, 7),
            ([1, 28.max(info.min_size), 28.max(info.min_size)], 10),
            ([3, 32.max(info.min_size), 32.max(info.min_size)], 10),
        ] {
            let graph = info
                .build(&ModelConfig::new(classes).input(input))
                .unwrap_or_else(|e| panic!("{} on {input:?}: {e}", info.name));
            assert_eq!(graph.output_shape(), &[classes], "{}", info.name);
        }
        // One pixel less than the smallest size is refused before anything runs.
        let too_small = [info.standard_input[0], info.min_size - 1, info.min_size - 1];
        let err = info
            .build(&ModelConfig::new(10).input(too_small))
            .unwrap_err();
        assert!(err.to_string().contains("input"), "{}: {err}", info.name);
    }
}

#[test]
fn lenet_trains_a_step_and_infers_the_same_values_as_the_tape() {
    let graph = models::build("lenet5", 10).unwrap();
    let mut rng = Rng::seed(0);
    let store = ParamStore::init(&graph, &mut rng);
    let x = Tensor::randn(&[4, 1, 28, 28], &mut rng);
    let logits = graph.forward(&store, &x).unwrap();
    assert_eq!(logits.shape(), &[4, 10]);

    let mut tape = Tape::new();
    let input = tape.input(x);
    let out = graph
        .forward_tape(&mut tape, &store, input, Mode::Eval, &mut rng, false)
        .unwrap();
    assert_eq!(tape.value(out.output).unwrap(), &logits);
    let loss = tape.cross_entropy(out.output, &[0, 1, 2, 3]).unwrap();
    let grads = tape.backward(loss).unwrap();
    for (spec, var) in graph.param_specs().iter().zip(&out.params) {
        let g = grads
            .get(*var)
            .unwrap_or_else(|| panic!("no gradient for {}", spec.name));
        assert_eq!(g.shape(), spec.spec.shape.as_slice());
        assert!(
            g.data().iter().any(|&v| v != 0.0),
            "{} has a zero gradient",
            spec.name
        );
    }
}

#[test]
fn wrong_inputs_are_reported_with_node_names_and_shapes() {
    let graph = models::build("lenet5", 10).unwrap();
    let store = ParamStore::init(&graph, &mut Rng::seed(1));
    let err = graph
        .forward(&store, &Tensor::zeros(&[2, 3, 28, 28]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'input': lenet5 expects input [N, 1, 28, 28], got [2, 3, 28, 28]"
    );
    let err = models::build("no_such_net", 10).unwrap_err().to_string();
    assert!(
        err.starts_with("models: no model named 'no_such_net'"),
        "{err}"
    );
}

/// A training step on a tape for every model up to 30M parameters (the VGGs and AlexNet are left
/// out only for the time their 60-140M parameters take to initialise): batch statistics, a
/// backward pass, and a finite gradient of the right shape for every trainable parameter.
#[test]
fn every_model_up_to_30m_parameters_takes_a_training_step() {
    for info in MODELS {
        let size = info.min_size.max(32);
        let graph = info
            .build(&ModelConfig::new(5).input([3, size, size]))
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        if graph.parameter_count() > 30_000_000 {
            continue;
        }
        let mut rng = Rng::seed(9);
        let store = ParamStore::init(&graph, &mut rng);
        let mut tape = Tape::new();
        let input = tape.input(Tensor::randn(&[2, 3, size, size], &mut rng));
        let out = graph
            .forward_tape(&mut tape, &store, input, Mode::Train, &mut rng, true)
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_eq!(tape.shape(out.output).unwrap(), &[2, 5], "{}", info.name);
        let loss = tape.cross_entropy(out.output, &[0, 4]).unwrap();
        let grads = tape.backward(loss).unwrap();
        for ((spec, var), kind) in graph
            .param_specs()
            .iter()
            .zip(&out.params)
            .zip(store.kinds())
        {
            if *kind == ParamKind::Buffer {
                continue;
            }
            let g = grads
                .get(*var)
                .unwrap_or_else(|| panic!("{}: no gradient for {}", info.name, spec.name));
            assert_eq!(g.shape(), spec.spec.shape.as_slice(), "{}", spec.name);
            assert!(
                g.all_finite(),
                "{}: {} has a non-finite gradient",
                info.name,
                spec.name
            );
        }
    }
}
