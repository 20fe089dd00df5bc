//! `convgrad train` and `convgrad eval`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use convgrad::data::{resize_images, Augment, Loader, Normalize};
use convgrad::train::{
    evaluate, load_checkpoint, model_for, train, DatasetKind, EpochMetrics, Observer,
    OptimizerKind, StepProgress, TrainConfig,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DatasetArg {
    FashionMnist,
    Mnist,
    Cifar10,
    /// An image folder: DIR/train/<class>/*.png|jpg and DIR/test/<class>/... (or val/).
    Folder,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
}

#[derive(Args)]
pub struct DataArgs {
    /// Dataset to use.
    #[arg(long, value_enum, default_value = "fashion-mnist")]
    pub dataset: DatasetArg,
    /// Directory holding the dataset's files (default for Fashion-MNIST:
    /// /usr/share/datasets/fashion-mnist, from `apt-get install dataset-fashion-mnist`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Image folders only: images are resized to SIZE x SIZE.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// Image folders only: 1 (grey) or 3 (RGB) channels.
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// Resize every image to SIZE x SIZE first, for models that need more than 28 x 28
    /// (AlexNet: 63, Inception-v3: 75). `eval` takes it from the checkpoint when not given.
    #[arg(long)]
    pub resize: Option<usize>,
}

impl DataArgs {
    fn kind(&self) -> DatasetKind {
        match self.dataset {
            DatasetArg::FashionMnist => DatasetKind::FashionMnist,
            DatasetArg::Mnist => DatasetKind::Mnist,
            DatasetArg::Cifar10 => DatasetKind::Cifar10,
            DatasetArg::Folder => DatasetKind::Folder {
                channels: self.channels,
                size: self.image_size,
            },
        }
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture name (see `convgrad models`).
    pub model: String,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Momentum (SGD and RMSprop).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Learning-rate schedule: constant, step:STEP_SIZE:GAMMA, cosine[:T_MAX], warmup:EPOCHS:cosine ...
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory for checkpoint.safetensors, metrics.csv and curves.svg
    /// (default: runs/MODEL-DATASET).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in the output directory (a run killed before its first
    /// checkpoint starts again from epoch 1).
    #[arg(long)]
    pub resume: bool,
    /// Random crops: pad by this many pixels, then crop back at a random offset (default: 4
    /// for CIFAR-10, none for the others).
    #[arg(long)]
    pub crop_padding: Option<usize>,
    /// Random horizontal flips (default: on for CIFAR-10 only). Use --flip=false to turn off.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub flip: Option<bool>,
    /// Train on at most this many batches per epoch (quick experiments).
    #[arg(long, hide = true)]
    pub max_batches: Option<usize>,
    /// Also print a plain progress line every STEPS steps (for logs: the progress bars are
    /// drawn only on a terminal).
    #[arg(long, value_name = "STEPS")]
    pub log_every: Option<usize>,
}

/// Progress bars: one per epoch, with loss, accuracy, images per second and time left.
struct Bars {
    bar: Option<ProgressBar>,
    log_every: Option<usize>,
}

impl Observer for Bars {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize) {
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn step(&mut self, p: &StepProgress) {
        if self
            .log_every
            .is_some_and(|every| p.batch % every.max(1) == 0)
        {
            let line = format!(
                "epoch {} step {}/{}: loss {:.4} acc {:.2}%",
                p.epoch,
                p.batch,
                p.batches,
                p.loss,
                100.0 * p.accuracy
            );
            // Above the bar on a terminal; a hidden bar would swallow the line.
            match &self.bar {
                Some(bar) if !bar.is_hidden() => bar.println(line),
                _ => println!("{line}"),
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(p.batch as u64);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                p.loss,
                100.0 * p.accuracy,
                p.images_per_second
            ));
        }
    }

    fn evaluating(&mut self, _epoch: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message("evaluating on the test set...");
        }
    }

    fn epoch_finished(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!(
            "epoch {:>3}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1} s, {:.0} img/s, lr {:.2e}",
            m.epoch,
            m.train_loss,
            100.0 * m.train_acc,
            m.test_loss,
            100.0 * m.test_acc,
            m.seconds,
            m.images_per_second,
            m.lr
        );
    }

    fn note(&mut self, message: &str) {
        println!("{message}");
    }
}

/// The augmentation the flags ask for, or `None` when they leave the dataset's default alone.
fn augment_override(
    default: &Augment,
    crop_padding: Option<usize>,
    flip: Option<bool>,
) -> Option<Augment> {
    if crop_padding.is_none() && flip.is_none() {
        return None;
    }
    Some(Augment {
        pad: crop_padding.unwrap_or(default.pad),
        flip: flip.unwrap_or(default.flip),
    })
}

/// Builds rayon's pool, sized by `threads` (default: one per core), with the main thread as its
/// worker 0, and sizes matrixmultiply's threads too unless the environment already does.
///
/// On a worker, a pass splits by work stealing instead of being handed to the pool while the
/// caller sleeps (see `convgrad::graph`'s passes). Being worker 0 rather than handing each whole
/// step to another worker also keeps every step's tensors in the main thread's malloc arena:
/// steps handed to either of two workers used two arenas, each holding a step's worth of freed
/// memory (ResNet-18's training peak went from 155 to 220 MB).
pub fn set_threads(threads: Option<usize>) -> convgrad::Result<()> {
    if let Some(n) = threads {
        if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
            // Read by matrixmultiply at its first product; nothing has run yet.
            std::env::set_var("MATMUL_NUM_THREADS", n.max(1).to_string());
        }
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.map_or(0, |n| n.max(1)))
        .use_current_thread()
        .build_global();
    match (built, threads) {
        (Err(e), Some(_)) => Err(convgrad::Error::InvalidArgument {
            op: "--threads".into(),
            message: e.to_string(),
        }),
        // Without --threads, a pool that already exists is as good as a new one.
        _ => Ok(()),
    }
}

pub fn run_train(args: &TrainArgs) -> convgrad::Result<()> {
    set_threads(args.threads)?;
    let dataset = args.data.kind();
    let dataset_default = TrainConfig {
        dataset: dataset.clone(),
        ..TrainConfig::new(&args.model)
    }
    .augment();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", args.model, dataset.name())));
    let config = TrainConfig {
        model: args.model.clone(),
        dataset,
        data_dir: args.data.data.clone(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer: match args.optimizer {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::AdamW,
            OptimizerArg::Rmsprop => OptimizerKind::RmsProp,
        },
        lr: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        schedule: args.schedule.clone(),
        augment: augment_override(&dataset_default, args.crop_padding, args.flip),
        resize: args.data.resize,
        seed: args.seed,
        out_dir: out.clone(),
        resume: args.resume,
        max_batches: args.max_batches,
    };
    println!(
        "training {} on {} for {} epochs: {} (lr {}), batch {}, augment {}, seed {}, {} threads -> {}",
        config.model,
        config.dataset.name(),
        config.epochs,
        config.optimizer.name(),
        config.lr,
        config.batch_size,
        config.augment().describe(),
        config.seed,
        rayon::current_num_threads(),
        out.display()
    );
    let mut bars = Bars {
        bar: None,
        log_every: args.log_every,
    };
    let report = train(&config, &mut bars)?;
    if let Some(last) = report.metrics.last() {
        println!(
            "done: test accuracy {:.2}% after {} epochs; wrote {}, {}, {}",
            100.0 * last.test_acc,
            last.epoch,
            report.checkpoint.display(),
            out.join("metrics.csv").display(),
            out.join("curves.svg").display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// Architecture name.
    pub model: String,
    /// A checkpoint written by `convgrad train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run_eval(args: &EvalArgs) -> convgrad::Result<()> {
    set_threads(args.threads)?;
    let dataset = args.data.kind();
    // The checkpoint first: a checkpoint of another model or dataset is refused before the
    // dataset is loaded, with what it was trained as.
    let checkpoint = load_checkpoint(&args.checkpoint)?;
    for (key, asked) in [
        ("convgrad.model", args.model.as_str()),
        ("convgrad.dataset", dataset.name()),
    ] {
        if let Some(trained) = checkpoint.metadata.get(key) {
            if trained != asked {
                return Err(convgrad::Error::InvalidArgument {
                    op: "eval".into(),
                    message: format!(
                        "{}: the checkpoint was trained with {key} = {trained}, not {asked}",
                        args.checkpoint.display()
                    ),
                });
            }
        }
    }
    let resize = match args.data.resize {
        Some(size) => Some(size),
        None => match checkpoint
            .metadata
            .get("convgrad.resize")
            .map(String::as_str)
        {
            None | Some("none") => None,
            Some(size) => Some(size.parse().map_err(|_| convgrad::Error::InvalidArgument {
                op: "eval".into(),
                message: format!("the checkpoint's convgrad.resize is {size:?}, not a size"),
            })?),
        },
    };
    let (train_set, test_set) = dataset.load(args.data.data.as_deref())?;
    let (train_set, test_set) = match resize {
        Some(size) => (
            resize_images(&train_set, size)?,
            resize_images(&test_set, size)?,
        ),
        None => (train_set, test_set),
    };
    let graph = model_for(&args.model, &train_set)?;
    let store = checkpoint.store_for(&graph)?;
    let normalize = match &dataset {
        DatasetKind::FashionMnist => Normalize::fashion_mnist(),
        DatasetKind::Mnist => Normalize::mnist(),
        DatasetKind::Cifar10 => Normalize::cifar10(),
        DatasetKind::Folder { .. } => Normalize::from_dataset(&train_set)?,
    };
    let names = test_set.class_names().to_vec();
    let labels = test_set.labels().to_vec();
    let loader = Loader::new(Arc::new(test_set), args.batch_size)?.normalize(normalize)?;
    let (loss, accuracy, predictions) = evaluate(&graph, &store, &loader)?;
    println!(
        "{} on the {} test set ({} images): loss {loss:.4}, accuracy {:.2}%",
        args.model,
        dataset.name(),
        labels.len(),
        100.0 * accuracy
    );
    print!("{}", confusion_matrix(&names, &labels, &predictions));
    Ok(())
}

/// Rows are true classes, columns predictions, with per-class recall.
fn confusion_matrix(names: &[String], labels: &[usize], predictions: &[usize]) -> String {
    let k = names.len();
    let mut counts = vec![vec![0usize; k]; k];
    for (&t, &p) in labels.iter().zip(predictions) {
        counts[t][p] += 1;
    }
    let labels: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} {n}"))
        .collect();
    let width = labels.iter().map(|n| n.len()).max().unwrap_or(5);
    let mut out = format!(
        "\nconfusion matrix (rows: true class, columns: predicted)\n{:>width$} ",
        ""
    );
    for j in 0..k {
        out += &format!("{j:>6}");
    }
    out += "   recall\n";
    for (i, row) in counts.iter().enumerate() {
        out += &format!("{:<width$} ", labels[i]);
        for c in row {
            out += &format!("{c:>6}");
        }
        let total: usize = row.iter().sum();
        out += &format!("   {:>5.1}%\n", 100.0 * row[i] as f64 / total.max(1) as f64);
    }
    out
}
