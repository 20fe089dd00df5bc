//! `curves.svg`: loss and accuracy per epoch, train and test, drawn as plain SVG.

use std::fmt::Write as _;

use super::EpochMetrics;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 360.0;
const PANEL_WIDTH: f64 = 400.0;
const PANEL_HEIGHT: f64 = 260.0;
const TOP: f64 = 50.0;
const TRAIN_COLOUR: &str = "#1f77b4";
const TEST_COLOUR: &str = "#d62728";

/// A "nice" upper bound and tick step for an axis from 0 (or `low`) to `high`.
fn ticks(low: f64, high: f64) -> (f64, f64, f64) {
    let span = (high - low).max(1e-9);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (
        (low / step).floor() * step,
        (high / step).ceil() * step,
        step,
    )
}

/// A named, coloured line of `(epoch, value)` points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

struct Panel<'a> {
    left: f64,
    title: &'a str,
    y_label: &'a str,
    series: [Series<'a>; 2],
    percent: bool,
}

impl Panel<'_> {
    fn draw(&self, epochs: usize, out: &mut String) {
        let values: Vec<f64> = self
            .series
            .iter()
            .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .collect();
        let (mut low, mut high) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !low.is_finite() {
            (low, high) = (0.0, 1.0);
        }
        if self.percent {
            high = high.min(1.0);
        } else {
            low = low.min(0.0);
        }
        let (y0, y1, step) = ticks(low, high);
        let x_span = (epochs.max(2) - 1) as f64;
        let x = |epoch: f64| self.left + (epoch - 1.0) / x_span * PANEL_WIDTH;
        let y = |v: f64| TOP + PANEL_HEIGHT - (v - y0) / (y1 - y0) * PANEL_HEIGHT;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="30" font-size="15" text-anchor="middle" font-weight="bold">{}</text>"#,
            self.left + PANEL_WIDTH / 2.0,
            self.title
        );
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{TOP}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="#999"/>"##,
            self.left
        );
        let mut v = y0;
        while v <= y1 + step / 2.0 {
            let label = if self.percent {
                format!("{:.0}%", v * 100.0)
            } else {
                format!("{v:.2}")
            };
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{label}</text>"##,
                self.left,
                self.left + PANEL_WIDTH,
                y(v),
                y(v),
                self.left - 6.0,
                y(v) + 4.0
            );
            v += step;
        }
        let every = epochs.div_ceil(10).max(1);
        for epoch in (1..=epochs).filter(|e| (e - 1) % every == 0 || *e == epochs) {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{epoch}</text>"#,
                x(epoch as f64),
                TOP + PANEL_HEIGHT + 16.0
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">epoch</text>"#,
            self.left + PANEL_WIDTH / 2.0,
            TOP + PANEL_HEIGHT + 34.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
            self.left - 40.0,
            TOP + PANEL_HEIGHT / 2.0,
            self.left - 40.0,
            TOP + PANEL_HEIGHT / 2.0,
            self.y_label
        );
        for (k, (name, colour, points)) in self.series.iter().enumerate() {
            let finite: Vec<&(f64, f64)> = points.iter().filter(|p| p.1.is_finite()).collect();
            let path: Vec<String> = finite
                .iter()
                .map(|(e, v)| format!("{:.1},{:.1}", x(*e), y(*v)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for (e, v) in &finite {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x(*e),
                    y(*v)
                );
            }
            // Loss falls and accuracy rises: put the legend where the lines are not.
            let legend_top = if self.percent {
                TOP + PANEL_HEIGHT - 36.0
            } else {
                TOP + 14.0
            };
            let legend_y = legend_top + 16.0 * k as f64;
            let legend_x = self.left + PANEL_WIDTH - 80.0;
            let _ = writeln!(
                out,
                r#"<line x1="{legend_x:.1}" x2="{:.1}" y1="{legend_y:.1}" y2="{legend_y:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="11">{name}</text>"#,
                legend_x + 18.0,
                legend_x + 24.0,
                legend_y + 4.0
            );
        }
    }
}

/// The SVG document for these epochs.
pub fn curves_svg(title: &str, rows: &[EpochMetrics]) -> String {
    let epochs = rows.len();
    let series = |f: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|m| (m.epoch as f64, f(m))).collect()
    };
    let loss = Panel {
        left: 70.0,
        title: "Loss",
        y_label: "cross-entropy",
        series: [
            ("train", TRAIN_COLOUR, series(|m| m.train_loss)),
            ("test", TEST_COLOUR, series(|m| m.test_loss)),
        ],
        percent: false,
    };
    let accuracy = Panel {
        left: 70.0 + PANEL_WIDTH + 100.0,
        title: "Accuracy",
        y_label: "accuracy",
        series: [
            ("train", TRAIN_COLOUR, series(|m| m.train_acc)),
            ("test", TEST_COLOUR, series(|m| m.test_acc)),
        ],
        percent: true,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555">{}</text>"##,
        WIDTH / 2.0,
        HEIGHT - 6.0,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    loss.draw(epochs, &mut out);
    accuracy.draw(epochs, &mut out);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_with_a_point_per_epoch() {
        let rows: Vec<EpochMetrics> = (1..=3)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 1.0 / e as f64,
                train_acc: 0.7 + 0.05 * e as f64,
                test_loss: 1.1 / e as f64,
                test_acc: 0.68 + 0.05 * e as f64,
                seconds: 10.0,
                lr: 0.001,
                images_per_second: 5000.0,
            })
            .collect();
        let svg = curves_svg("lenet5 on fashion-mnist", &rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 12);
        assert!(svg.contains("Accuracy") && svg.contains("Loss"));
        assert_eq!(ticks(0.0, 0.93), (0.0, 1.0, 0.2));
    }
}
