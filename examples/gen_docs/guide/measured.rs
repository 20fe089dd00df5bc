//! The measurements recorded in BENCHMARKS.md, read back so the guide quotes them rather than
//! copies them: the `convgrad train` runs on Fashion-MNIST and the kernel timings.
//!
//! The parser is strict on purpose: a section it cannot read is an error, not a silently missing
//! number.

/// One recorded `convgrad train MODEL` run on Fashion-MNIST.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub model: String,
    /// The flags after the model beyond `--epochs N` (`"--crop-padding 2 --flip"`), or empty.
    pub flags: String,
    pub epochs: usize,
    /// Test accuracy after the last epoch, in percent, as printed (`"92.48"`).
    pub final_test_accuracy: String,
    /// Median wall time of one epoch (training and test evaluation), seconds.
    pub median_epoch_seconds: f64,
    /// Median training throughput, images per second.
    pub median_images_per_second: f64,
}

/// One kernel case of the "Convolution kernels against PyTorch" table.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelCase {
    /// `direct3x3`, `depthwise3x3_s2`, `sep_pw_1x1`, ...
    pub case: String,
    /// (N, C_in, C_out, H = W, K, stride, groups); padding is K / 2.
    pub shape: [usize; 7],
    pub convgrad_forward_ms: f64,
    pub pytorch_forward_ms: f64,
    pub convgrad_forward_backward_ms: f64,
    pub pytorch_forward_backward_ms: f64,
    /// convgrad's forward GFLOP/s.
    pub gflops: f64,
}

/// Sections of `markdown` whose `## ` heading satisfies `wanted`, as (heading, body).
fn sections(markdown: &str, wanted: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let starts: Vec<usize> = markdown
        .match_indices("\n## ")
        .map(|(i, _)| i + 1)
        .collect();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(markdown.len());
        let section = &markdown[start..end];
        let (heading, body) = section.split_once('\n').unwrap_or((section, ""));
        if wanted(heading) {
            out.push((heading, body));
        }
    }
    out
}

/// The cells of a markdown table row, trimmed, without the emphasis stars.
fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().trim_matches('*').trim().to_string())
        .collect()
}

/// The first table in `body` whose header starts with `first_column`: (header, rows).
fn table(body: &str, first_column: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = body.lines().skip_while(|line| {
        let line = line.trim();
        !(line.starts_with('|') && cells(line).first().map(String::as_str) == Some(first_column))
    });
    let header = cells(lines.next()?);
    let rows = lines
        .skip(1) // the |---| rule
        .take_while(|line| line.trim().starts_with('|'))
        .map(cells)
        .collect();
    Some((header, rows))
}

fn column(header: &[String], name: &str, section: &str) -> Result<usize, String> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| format!("BENCHMARKS.md, '{section}': no '{name}' column"))
}

fn number(cell: &str, what: &str, section: &str) -> Result<f64, String> {
    cell.trim_end_matches('%')
        .replace(',', "")
        .parse()
        .map_err(|_| format!("BENCHMARKS.md, '{section}': {what} '{cell}' is not a number"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Every "## Training ... on Fashion-MNIST" section that runs `cargo run --release -- train
/// MODEL`: the model and its per-epoch table (which must be there and readable).
pub fn trainings(benchmarks: &str) -> Result<Vec<Training>, String> {
    let mut out = Vec::new();
    let wanted = |h: &str| h.starts_with("## Training") && h.contains("Fashion-MNIST");
    for (heading, body) in sections(benchmarks, wanted) {
        // A section without a `convgrad train` command records something else (a baseline
        // trained by an example, say): not a zoo model's run.
        let Some((model, flags)) = body.lines().find_map(|line| {
            let after = line.split("-- train ").nth(1)?;
            let command = after.split('#').next().unwrap_or(after);
            let mut words = command.split_whitespace();
            let model = words.next()?.to_string();
            let mut flags = Vec::new();
            while let Some(word) = words.next() {
                if word == "--epochs" {
                    words.next();
                } else {
                    flags.push(word);
                }
            }
            Some((model, flags.join(" ")))
        }) else {
            continue;
        };
        let (header, rows) = table(body, "epoch")
            .ok_or_else(|| format!("BENCHMARKS.md, '{heading}': no per-epoch table"))?;
        let (acc, secs, rate) = (
            column(&header, "test acc", heading)?,
            column(&header, "seconds", heading)?,
            column(&header, "img/s", heading)?,
        );
        let last = rows
            .last()
            .ok_or_else(|| format!("BENCHMARKS.md, '{heading}': the table is empty"))?;
        let seconds = rows
            .iter()
            .map(|r| number(&r[secs], "seconds", heading))
            .collect::<Result<Vec<_>, _>>()?;
        let rates = rows
            .iter()
            .map(|r| number(&r[rate], "img/s", heading))
            .collect::<Result<Vec<_>, _>>()?;
        number(&last[acc], "test accuracy", heading)?;
        out.push(Training {
            model,
            flags,
            epochs: rows.len(),
            final_test_accuracy: last[acc].trim_end_matches('%').to_string(),
            median_epoch_seconds: median(seconds),
            median_images_per_second: median(rates),
        });
    }
    if out.is_empty() {
        return Err("BENCHMARKS.md has no 'Training ... on Fashion-MNIST' section".into());
    }
    Ok(out)
}

/// The rows of the "Convolution kernels against PyTorch" table.
pub fn kernel_cases(benchmarks: &str) -> Result<Vec<KernelCase>, String> {
    let heading = "## Convolution kernels against PyTorch";
    let (_, body) = sections(benchmarks, |h| h.trim() == heading)
        .into_iter()
        .next()
        .ok_or_else(|| format!("BENCHMARKS.md has no '{heading}' section"))?;
    let (header, rows) =
        table(body, "case").ok_or_else(|| format!("BENCHMARKS.md, '{heading}': no table"))?;
    let col = |name| column(&header, name, heading);
    let (shape, fwd, torch_fwd, both, torch_both, gflops) = (
        col("shape")?,
        col("convgrad fwd ms")?,
        col("PyTorch fwd ms")?,
        col("convgrad fwd+bwd ms")?,
        col("PyTorch fwd+bwd ms")?,
        col("GFLOP/s")?,
    );
    rows.iter()
        .map(|r| {
            let dims: Vec<usize> = r[shape]
                .split(',')
                .map(|d| d.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("BENCHMARKS.md: shape '{}' is not 7 numbers", r[shape]))?;
            let shape: [usize; 7] = dims
                .try_into()
                .map_err(|_| format!("BENCHMARKS.md: shape '{}' is not 7 numbers", r[shape]))?;
            Ok(KernelCase {
                case: r[0].clone(),
                shape,
                convgrad_forward_ms: number(&r[fwd], "time", heading)?,
                pytorch_forward_ms: number(&r[torch_fwd], "time", heading)?,
                convgrad_forward_backward_ms: number(&r[both], "time", heading)?,
                pytorch_forward_backward_ms: number(&r[torch_both], "time", heading)?,
                gflops: number(&r[gflops], "GFLOP/s", heading)?,
            })
        })
        .collect()
}
