//! A standard 3 x 3 convolution against a depthwise-separable one (depthwise 3 x 3, then
//! pointwise 1 x 1) of the same input and output shape: parameters, multiply-adds and measured
//! time, side by side, on layer shapes from MobileNet and Xception.
//!
//! The counts follow the MobileNet paper (Howard et al. 2017, section 3.1): the separable layer
//! costs `1/C_out + 1/K^2` of the standard one. The times show how much of that saving survives
//! on a CPU: the depthwise half does few multiply-adds per byte it reads, so it runs far below the
//! machine's peak, and the measured speed-up is smaller than the count promises.
//!
//! Run with `cargo run --release --example separable_vs_standard`. Times are medians of a few
//! runs on whatever else the machine is doing; compare the ratios, not the milliseconds.

use std::time::Instant;

use convgrad::graph::{Graph, GraphBuilder, ParamStore};
use convgrad::nn::{Conv2d, Mode, SeparableConv2d};
use convgrad::{Rng, Tape, Tensor};

/// A layer shape: batch, channels in and out, square spatial size; 3 x 3 kernels, padding 1.
struct Case {
    name: &'static str,
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    size: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "32 x 128->128, 16x16",
        batch: 32,
        in_channels: 128,
        out_channels: 128,
        size: 16,
    },
    Case {
        name: "8 x 256->256, 28x28 (MobileNet)",
        batch: 8,
        in_channels: 256,
        out_channels: 256,
        size: 28,
    },
    Case {
        name: "4 x 728->728, 19x19 (Xception)",
        batch: 4,
        in_channels: 728,
        out_channels: 728,
        size: 19,
    },
];

const KERNEL: usize = 3;
const REPEATS: usize = 3;

fn standard(case: &Case) -> convgrad::Result<Graph> {
    let (mut b, x) = GraphBuilder::new("standard", &[case.in_channels, case.size, case.size]);
    let conv = Conv2d::new(0, case.out_channels, KERNEL)
        .padding(1)
        .bias(false);
    let y = b.conv("conv", x, conv)?;
    b.build(y)
}

fn separable(case: &Case) -> convgrad::Result<Graph> {
    let (mut b, x) = GraphBuilder::new("separable", &[case.in_channels, case.size, case.size]);
    let conv = SeparableConv2d::new(0, case.out_channels, KERNEL).padding(1);
    let y = b.separable_conv("conv", x, conv)?;
    b.build(y)
}

/// Median milliseconds of `REPEATS` runs of `f`, after one warm-up run.
fn median_ms(mut f: impl FnMut() -> convgrad::Result<()>) -> convgrad::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[REPEATS / 2])
}

/// Forward time (inference) and forward + backward time (a training step's share).
fn time(graph: &Graph, x: &Tensor, rng: &mut Rng) -> convgrad::Result<(f64, f64)> {
    let store = ParamStore::init(graph, rng);
    let forward = median_ms(|| graph.forward(&store, x).map(|_| ()))?;
    let mut dropout_rng = Rng::seed(0);
    let training = median_ms(|| {
        let mut tape = Tape::new();
        let input = tape.input(x.clone());
        let out = graph.forward_tape(
            &mut tape,
            &store,
            input,
            Mode::Train,
            &mut dropout_rng,
            false,
        )?;
        let loss = tape.mean(out.output)?;
        tape.backward(loss).map(|_| ())
    })?;
    Ok((forward, training))
}

fn main() -> convgrad::Result<()> {
    let mut rng = Rng::seed(0);
    println!(
        "{:<34} {:>22} {:>24} {:>7} {:>22} {:>22} {:>18}",
        "case (3x3, padding 1)",
        "params std / sep",
        "mult-adds std / sep",
        "ratio",
        "forward ms std / sep",
        "fwd+bwd ms std / sep",
        "fwd GMAC/s std/sep"
    );
    for case in CASES {
        let (std_graph, sep_graph) = (standard(case)?, separable(case)?);
        let n = case.batch as u64;
        let (std_macs, sep_macs) = (n * std_graph.multiply_adds(), n * sep_graph.multiply_adds());
        let ratio = sep_macs as f64 / std_macs as f64;
        let formula = 1.0 / case.out_channels as f64 + 1.0 / (KERNEL * KERNEL) as f64;
        assert!((ratio - formula).abs() < 1e-9, "counts follow the paper");

        let x = Tensor::randn(
            &[case.batch, case.in_channels, case.size, case.size],
            &mut rng,
        );
        let (std_fwd, std_train) = time(&std_graph, &x, &mut rng)?;
        let (sep_fwd, sep_train) = time(&sep_graph, &x, &mut rng)?;
        let rate = |macs: u64, ms: f64| macs as f64 / ms / 1e6;
        println!(
            "{:<34} {:>22} {:>24} {:>7.3} {:>22} {:>22} {:>18}",
            case.name,
            format!(
                "{} / {}",
                std_graph.parameter_count(),
                sep_graph.parameter_count()
            ),
            format!(
                "{:.2}G / {:.3}G",
                std_macs as f64 / 1e9,
                sep_macs as f64 / 1e9
            ),
            ratio,
            format!("{std_fwd:.1} / {sep_fwd:.1} ({:.1}x)", std_fwd / sep_fwd),
            format!(
                "{std_train:.1} / {sep_train:.1} ({:.1}x)",
                std_train / sep_train
            ),
            format!(
                "{:.0} / {:.0}",
                rate(std_macs, std_fwd),
                rate(sep_macs, sep_fwd)
            ),
        );
    }
    println!(
        "\nratio = separable / standard multiply-adds = 1/C_out + 1/9: about 8-9x fewer. The measured \
         speed-up is smaller: the separable layer runs at fewer multiply-adds per second (last \
         column), because each input value a standard 3x3 convolution reads feeds 9 * C_out \
         multiply-adds and in the depthwise half only 9, so that half waits on memory rather than \
         on the FMA units."
    );
    Ok(())
}
