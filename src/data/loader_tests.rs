//! Tests of the loader: orders, batch boundaries, determinism across threads, early stop,
//! augmentation shapes and normalisation statistics.

use super::*;

/// `len` one-channel 2x3 images; every pixel of image `i` is `i`, its label `i % 3`.
fn indexed(len: usize) -> Arc<Dataset> {
    let pixels = (0..len).flat_map(|i| [i as u8; 6]).collect();
    let labels = (0..len).map(|i| i % 3).collect();
    let names = vec!["a".into(), "b".into(), "c".into()];
    Arc::new(Dataset::new(pixels, labels, [1, 2, 3], names).unwrap())
}

/// The sample index each image of a batch came from (its pixel value).
fn samples(batch: &Batch) -> Vec<usize> {
    batch
        .images
        .data()
        .chunks(6)
        .map(|image| (image[0] * 255.0).round() as usize)
        .collect()
}

#[test]
fn epoch_order_is_a_reproducible_permutation() {
    let order = epoch_order(1000, 7, 0);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_eq!(order, epoch_order(1000, 7, 0));
    assert_ne!(order, epoch_order(1000, 7, 1));
    assert_ne!(order, epoch_order(1000, 8, 0));
    assert_ne!(order, (0..1000).collect::<Vec<_>>());
    assert!(epoch_order(0, 7, 0).is_empty());
}

#[test]
fn an_epoch_visits_every_sample_once_with_its_label() {
    let loader = Loader::new(indexed(10), 4).unwrap().shuffle(3);
    let batches: Vec<Batch> = loader.epoch(2).collect();
    let sizes: Vec<usize> = batches.iter().map(|b| b.labels.len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(batches[2].images.shape(), &[2, 1, 2, 3]);
    let seen: Vec<usize> = batches.iter().flat_map(samples).collect();
    assert_eq!(seen, loader.epoch_order(2));
    for batch in &batches {
        let labels: Vec<usize> = samples(batch).iter().map(|i| i % 3).collect();
        assert_eq!(batch.labels, labels);
    }
    let dropping = loader.clone().drop_last(true);
    assert_eq!(dropping.num_batches(), 2);
    assert_eq!(
        dropping
            .epoch(2)
            .map(|b| b.labels.len())
            .collect::<Vec<_>>(),
        [4, 4]
    );
    // Without shuffling the order is the dataset's.
    let plain = Loader::new(indexed(5), 2).unwrap();
    assert_eq!(
        plain.epoch(9).flat_map(|b| samples(&b)).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
}

#[test]
fn batches_do_not_depend_on_the_thread_that_built_them() {
    let loader = Loader::new(indexed(50), 8)
        .unwrap()
        .shuffle(11)
        .augment(Augment { pad: 1, flip: true });
    let prefetched: Vec<Batch> = loader.epoch(4).collect();
    let inline: Vec<Batch> = loader.clone().prefetch(0).epoch(4).collect();
    let again: Vec<Batch> = loader.epoch(4).collect();
    assert_eq!(prefetched.len(), 7);
    for ((a, b), c) in prefetched.iter().zip(&inline).zip(&again) {
        assert_eq!(a.images, b.images);
        assert_eq!(a.images, c.images);
        assert_eq!((a.index, &a.labels), (b.index, &b.labels));
        assert_eq!(
            Some(&a.images),
            loader.batch(4, a.index).as_ref().map(|b| &b.images)
        );
    }
    // A resumed epoch picks up exactly where the first left off.
    let resumed: Vec<Batch> = loader.epoch_from(4, 5).collect();
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0].images, prefetched[5].images);
    assert!(loader.batch(4, 7).is_none());
    // Another epoch augments differently.
    assert_ne!(loader.batch(5, 0).unwrap().images, prefetched[0].images);
}

#[test]
fn stopping_early_does_not_hang() {
    let loader = Loader::new(indexed(200), 1).unwrap().prefetch(1);
    let mut batches = loader.epoch(0);
    assert_eq!(batches.len(), 200);
    let first: Vec<usize> = batches.by_ref().take(3).flat_map(|b| samples(&b)).collect();
    assert_eq!(first, [0, 1, 2]);
    assert_eq!(batches.len(), 197);
    batches.stop();
    // Dropped without reading anything at all.
    drop(loader.epoch(1));
}

#[test]
fn augmentation_keeps_shapes() {
    let pixels: Vec<u8> = (0..4 * 3 * 5 * 5).map(|v| v as u8).collect();
    let names = vec!["x".to_string()];
    let data = Arc::new(Dataset::new(pixels, vec![0; 4], [3, 5, 5], names).unwrap());
    let loader = Loader::new(data, 3)
        .unwrap()
        .shuffle(1)
        .normalize(Normalize::cifar10())
        .unwrap()
        .augment(Augment::cifar10());
    let shapes: Vec<Vec<usize>> = loader.epoch(0).map(|b| b.images.shape().to_vec()).collect();
    assert_eq!(shapes, [vec![3, 3, 5, 5], vec![1, 3, 5, 5]]);
    assert!(loader.epoch(0).all(|b| b.images.all_finite()));
}

#[test]
fn normalisation_from_the_training_set_gives_mean_0_std_1() {
    // Three channels with different spreads: uniform over all bytes, a narrow band, two values.
    let mut rng = Rng::seed(9);
    let (len, plane) = (300, 16);
    let mut pixels = Vec::with_capacity(len * 3 * plane);
    for _ in 0..len {
        pixels.extend((0..plane).map(|_| rng.below(256) as u8));
        pixels.extend((0..plane).map(|_| 100 + rng.below(20) as u8));
        pixels.extend((0..plane).map(|_| if rng.below(4) == 0 { 250 } else { 10 }));
    }
    let names = vec!["x".to_string()];
    let data = Arc::new(Dataset::new(pixels, vec![0; len], [3, 4, 4], names).unwrap());
    let normalize = Normalize::from_dataset(&data).unwrap();
    let loader = Loader::new(data, 64)
        .unwrap()
        .shuffle(2)
        .normalize(normalize)
        .unwrap();
    let mut sums = [(0.0f64, 0.0f64); 3];
    for batch in loader.epoch(0) {
        for image in batch.images.data().chunks(3 * plane) {
            for (channel, values) in image.chunks(plane).enumerate() {
                for &v in values {
                    sums[channel].0 += f64::from(v);
                    sums[channel].1 += f64::from(v) * f64::from(v);
                }
            }
        }
    }
    let count = (len * plane) as f64;
    for (channel, (sum, sum_sq)) in sums.iter().enumerate() {
        let mean = sum / count;
        let std = (sum_sq / count - mean * mean).sqrt();
        assert!(mean.abs() < 1e-4, "channel {channel}: mean {mean}");
        assert!((std - 1.0).abs() < 1e-4, "channel {channel}: std {std}");
    }
}

#[test]
fn bad_configurations_are_errors() {
    assert!(Loader::new(indexed(3), 0).is_err());
    let err = Loader::new(indexed(3), 2)
        .unwrap()
        .normalize(Normalize::cifar10())
        .unwrap_err();
    assert!(
        err.to_string().contains("3 normalisation channels"),
        "{err}"
    );
    let empty = Arc::new(Dataset::new(vec![], vec![], [1, 1, 1], vec!["a".into()]).unwrap());
    assert!(Normalize::from_dataset(&empty).is_err());
    assert_eq!(Loader::new(empty, 4).unwrap().epoch(0).count(), 0);
}
