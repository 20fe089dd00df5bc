//! Learning-rate schedules as pure functions of the epoch, with PyTorch's closed forms.
//!
//! [`Schedule::lr_at`] computes the learning rate of epoch `t` (counted from 0) from scratch, so a
//! resumed run only needs the epoch number. "Epoch" is whatever unit the caller counts: pass step
//! numbers and step totals to schedule per step. With base learning rate `base`:
//!
//! | schedule | lr at `t` | PyTorch |
//! |---|---|---|
//! | constant | `base` | no scheduler |
//! | step | `base * gamma^floor(t / step_size)` | `StepLR` |
//! | cosine | `eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2` | `CosineAnnealingLR` |
//! | warm-up | `base * (f + (1 - f) * t / N)` for `t < N`, then the next schedule at `t - N` | `LinearLR` + `SequentialLR` |
//!
//! Cosine annealing keeps following the cosine past `T_max` (the lr climbs back up), as
//! PyTorch's closed form does; by default `T_max` is the length of the run, so it never gets
//! there. The warm-up ramps linearly from `f * base` (`f` is the start factor) and reaches `base`
//! at epoch `N`, where the next schedule starts from its own epoch 0.
//!
//! ## The command-line grammar of [`Schedule::parse`]
//!
//! ```text
//! constant
//! step:STEP_SIZE[:GAMMA]                   GAMMA defaults to 0.1 (as StepLR)
//! cosine[:T_MAX[:ETA_MIN]]                 T_MAX defaults to the epochs left, ETA_MIN to 0
//! warmup:EPOCHS[:START_FACTOR]:SCHEDULE    START_FACTOR defaults to 0.01 (as torchvision's
//!                                          reference scripts); SCHEDULE is one of the above
//! ```
//!
//! For example `step:30:0.1`, `cosine`, `cosine:90:1e-5`, `warmup:5:cosine`,
//! `warmup:3:0.1:step:10`. [`Schedule`]'s `Display` writes the full form back.

use std::f64::consts::PI;
use std::fmt;

use crate::error::{Error, Result};

const GRAMMAR: &str = "constant, step:STEP_SIZE[:GAMMA], cosine[:T_MAX[:ETA_MIN]] or \
                       warmup:EPOCHS[:START_FACTOR]:SCHEDULE";

/// The shape of a schedule; [`Schedule`] pairs it with a base learning rate.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleKind {
    /// The base learning rate throughout.
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step { step_size: usize, gamma: f64 },
    /// Half a cosine from the base rate down to `eta_min` over `t_max` epochs.
    Cosine { t_max: usize, eta_min: f64 },
    /// Ramp linearly from `start_factor * base` to `base` over `epochs`, then follow `then`.
    Warmup {
        epochs: usize,
        start_factor: f64,
        then: Box<ScheduleKind>,
    },
}

/// A learning rate for every epoch (or step): see the [module docs](self) for the formulas.
///
/// ```
/// use convgrad::optim::Schedule;
/// // 90 epochs: 5 of linear warm-up from 0.01 * 0.1, then a cosine over the remaining 85.
/// let schedule = Schedule::parse("warmup:5:cosine", 0.1, 90)?;
/// assert_eq!(schedule.to_string(), "warmup:5:0.01:cosine:85:0");
/// assert!((schedule.lr_at(0) - 0.001).abs() < 1e-12);
/// assert_eq!(schedule.lr_at(5), 0.1);
/// assert!((schedule.lr_at(5 + 85) - 0.0).abs() < 1e-12);
/// let err = Schedule::parse("step:ten", 0.1, 90).unwrap_err();
/// assert!(err.to_string().contains("STEP_SIZE must be a positive integer, found 'ten'"));
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    base_lr: f64,
    kind: ScheduleKind,
}

impl Schedule {
    /// A schedule from its parts; errors on a negative base rate, a zero step size, period or
    /// warm-up length, a non-positive gamma, a negative `eta_min`, a start factor outside
    /// (0, 1], or a warm-up followed by another warm-up.
    pub fn new(base_lr: f64, kind: ScheduleKind) -> Result<Schedule> {
        if !(base_lr.is_finite() && base_lr >= 0.0) {
            return Err(invalid(format!(
                "base lr = {base_lr} is invalid: expected a finite value >= 0"
            )));
        }
        check_kind(&kind, false)?;
        Ok(Schedule { base_lr, kind })
    }

    /// Parses the command-line grammar of the [module docs](self); `total_epochs` is the length
    /// of the run, the default `T_MAX` of a cosine.
    pub fn parse(spec: &str, base_lr: f64, total_epochs: usize) -> Result<Schedule> {
        let tokens: Vec<&str> = spec.trim().split(':').collect();
        let kind = parse_kind(&tokens, total_epochs)
            .map_err(|problem| invalid(format!("'{spec}': {problem}; expected {GRAMMAR}")))?;
        Schedule::new(base_lr, kind)
    }

    /// The learning rate of epoch (or step) `epoch`, counted from 0.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        lr_of(&self.kind, self.base_lr, epoch)
    }

    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    pub fn kind(&self) -> &ScheduleKind {
        &self.kind
    }
}

fn lr_of(kind: &ScheduleKind, base: f64, epoch: usize) -> f64 {
    match kind {
        ScheduleKind::Constant => base,
        ScheduleKind::Step { step_size, gamma } => base * gamma.powf((epoch / step_size) as f64),
        ScheduleKind::Cosine { t_max, eta_min } => {
            eta_min + (base - eta_min) * (1.0 + (PI * epoch as f64 / *t_max as f64).cos()) / 2.0
        }
        ScheduleKind::Warmup {
            epochs,
            start_factor,
            then,
        } => {
            if epoch < *epochs {
                base * (start_factor + (1.0 - start_factor) * epoch as f64 / *epochs as f64)
            } else {
                lr_of(then, base, epoch - epochs)
            }
        }
    }
}

fn check_kind(kind: &ScheduleKind, after_warmup: bool) -> Result<()> {
    let problem = match kind {
        ScheduleKind::Constant => None,
        ScheduleKind::Step { step_size, gamma } => {
            if *step_size == 0 {
                Some("step size must be positive".to_string())
            } else {
                (!(gamma.is_finite() && *gamma > 0.0))
                    .then(|| format!("gamma = {gamma} must be finite and > 0"))
            }
        }
        ScheduleKind::Cosine { t_max, eta_min } => {
            if *t_max == 0 {
                Some("cosine T_max must be positive".to_string())
            } else {
                (!(eta_min.is_finite() && *eta_min >= 0.0))
                    .then(|| format!("eta_min = {eta_min} must be finite and >= 0"))
            }
        }
        ScheduleKind::Warmup {
            epochs,
            start_factor,
            then,
        } => {
            if after_warmup {
                Some("a warm-up cannot follow a warm-up".to_string())
            } else if *epochs == 0 {
                Some("warm-up length must be positive".to_string())
            } else if !(*start_factor > 0.0 && *start_factor <= 1.0) {
                Some(format!(
                    "warm-up start factor = {start_factor} must be in (0, 1]"
                ))
            } else {
                return check_kind(then, true);
            }
        }
    };
    problem.map_or(Ok(()), |p| Err(invalid(p)))
}

fn invalid(message: String) -> Error {
    Error::invalid("lr schedule", message)
}

/// Parses `tokens` (the spec split at ':'), or says what was expected.
fn parse_kind(tokens: &[&str], epochs_left: usize) -> Result<ScheduleKind, String> {
    let too_many = |expected: &str| format!("too many fields after {expected}");
    match tokens {
        ["constant"] => Ok(ScheduleKind::Constant),
        ["constant", ..] => Err(too_many("constant")),
        ["step", step_size, rest @ ..] => {
            let step_size = positive_int("STEP_SIZE", step_size)?;
            let gamma = match rest {
                [] => 0.1,
                [gamma] => number("GAMMA", gamma)?,
                _ => return Err(too_many("step:STEP_SIZE:GAMMA")),
            };
            Ok(ScheduleKind::Step { step_size, gamma })
        }
        ["step"] => Err("step needs a STEP_SIZE".into()),
        ["cosine", rest @ ..] => {
            let (t_max, eta_min) = match rest {
                [] => (None, 0.0),
                [t_max] => (Some(positive_int("T_MAX", t_max)?), 0.0),
                [t_max, eta_min] => (
                    Some(positive_int("T_MAX", t_max)?),
                    number("ETA_MIN", eta_min)?,
                ),
                _ => return Err(too_many("cosine:T_MAX:ETA_MIN")),
            };
            let t_max = match t_max {
                Some(t_max) => t_max,
                None if epochs_left > 0 => epochs_left,
                None => return Err("cosine without T_MAX needs epochs left to anneal over".into()),
            };
            Ok(ScheduleKind::Cosine { t_max, eta_min })
        }
        ["warmup", epochs, rest @ ..] => {
            let epochs = positive_int("EPOCHS", epochs)?;
            let (start_factor, then) = match rest {
                [factor, then @ ..] if factor.parse::<f64>().is_ok() => {
                    (number("START_FACTOR", factor)?, then)
                }
                then => (0.01, then),
            };
            if then.is_empty() {
                return Err("warmup needs the SCHEDULE that follows it".into());
            }
            let then = parse_kind(then, epochs_left.saturating_sub(epochs))?;
            Ok(ScheduleKind::Warmup {
                epochs,
                start_factor,
                then: Box::new(then),
            })
        }
        ["warmup"] => Err("warmup needs EPOCHS and a SCHEDULE".into()),
        [name, ..] => Err(format!("unknown schedule '{name}'")),
        [] => Err("empty schedule".into()),
    }
}

fn positive_int(what: &str, token: &str) -> Result<usize, String> {
    match token.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{what} must be a positive integer, found '{token}'"
        )),
    }
}

fn number(what: &str, token: &str) -> Result<f64, String> {
    token
        .parse::<f64>()
        .map_err(|_| format!("{what} must be a number, found '{token}'"))
}

/// The full form of the grammar, which [`Schedule::parse`] reads back.
impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleKind::Constant => write!(f, "constant"),
            ScheduleKind::Step { step_size, gamma } => write!(f, "step:{step_size}:{gamma}"),
            ScheduleKind::Cosine { t_max, eta_min } => write!(f, "cosine:{t_max}:{eta_min}"),
            ScheduleKind::Warmup {
                epochs,
                start_factor,
                then,
            } => write!(f, "warmup:{epochs}:{start_factor}:{then}"),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: python3 scripts/torch_optim.py (torch 2.15), which
    // steps torch.optim.lr_scheduler and prints the lr of each epoch with 12 significant digits.

    /// base lr 0.1, StepLR(step_size=3, gamma=0.5), epochs 0..10
    #[rustfmt::skip]
    const STEP_LR: &[f64] = &[
        1.00000000000e-01, 1.00000000000e-01, 1.00000000000e-01, 5.00000000000e-02,
        5.00000000000e-02, 5.00000000000e-02, 2.50000000000e-02, 2.50000000000e-02,
        2.50000000000e-02, 1.25000000000e-02,
    ];

    /// base lr 0.1, CosineAnnealingLR(T_max=10, eta_min=0.001), past T_max, epochs 0..13
    #[rustfmt::skip]
    const COSINE_LR: &[f64] = &[
        1.00000000000e-01, 9.75772975566e-02, 9.05463412216e-02, 7.95953699885e-02,
        6.57963412216e-02, 5.05000000000e-02, 3.52036587784e-02, 2.14046300115e-02,
        1.04536587784e-02, 3.42270244339e-03, 1.00000000000e-03, 3.42270244339e-03,
        1.04536587784e-02,
    ];

    /// base lr 0.1, SequentialLR([LinearLR(start_factor=0.01, total_iters=5), CosineAnnealingLR(T_max=15)], milestones=[5]), epochs 0..21
    #[rustfmt::skip]
    const WARMUP_COSINE_LR: &[f64] = &[
        1.00000000000e-03, 2.08000000000e-02, 4.06000000000e-02, 6.04000000000e-02,
        8.02000000000e-02, 1.00000000000e-01, 9.89073800367e-02, 9.56772728821e-02,
        9.04508497187e-02, 8.34565303179e-02, 7.50000000000e-02, 6.54508497187e-02,
        5.52264231634e-02, 4.47735768366e-02, 3.45491502813e-02, 2.50000000000e-02,
        1.65434696821e-02, 9.54915028125e-03, 4.32272711787e-03, 1.09261996331e-03,
        0.00000000000e+00,
    ];

    fn assert_lrs(schedule: &Schedule, expected: &[f64]) {
        for (epoch, &want) in expected.iter().enumerate() {
            let got = schedule.lr_at(epoch);
            assert!(
                (got - want).abs() <= 1e-10 * want.abs().max(1e-3),
                "{schedule}: epoch {epoch}: got {got}, PyTorch {want}"
            );
        }
    }

    #[test]
    fn step_matches_step_lr() {
        assert_lrs(&Schedule::parse("step:3:0.5", 0.1, 10).unwrap(), STEP_LR);
    }

    #[test]
    fn cosine_matches_cosine_annealing_lr_past_t_max() {
        assert_lrs(
            &Schedule::parse("cosine:10:0.001", 0.1, 13).unwrap(),
            COSINE_LR,
        );
    }

    #[test]
    fn warmup_then_cosine_matches_linear_lr_and_sequential_lr() {
        let schedule = Schedule::parse("warmup:5:cosine", 0.1, 20).unwrap();
        assert_eq!(schedule.to_string(), "warmup:5:0.01:cosine:15:0");
        assert_lrs(&schedule, WARMUP_COSINE_LR);
    }

    #[test]
    fn parses_every_form_and_round_trips_through_display() {
        let cases = [
            ("constant", "constant"),
            ("step:10", "step:10:0.1"),
            ("step:30:0.2", "step:30:0.2"),
            ("cosine", "cosine:90:0"),
            ("cosine:50", "cosine:50:0"),
            ("cosine:50:1e-5", "cosine:50:0.00001"),
            (" warmup:3:0.1:step:10 ", "warmup:3:0.1:step:10:0.1"),
            ("warmup:10:constant", "warmup:10:0.01:constant"),
        ];
        for (spec, full) in cases {
            let schedule = Schedule::parse(spec, 0.1, 90).unwrap();
            assert_eq!(schedule.to_string(), full, "{spec}");
            assert_eq!(Schedule::parse(full, 0.1, 90).unwrap(), schedule);
        }
        assert_eq!(
            Schedule::parse("constant", 0.5, 90).unwrap().lr_at(1000),
            0.5
        );
    }

    #[test]
    fn bad_specs_say_what_was_expected() {
        let cases = [
            ("", "unknown schedule ''"),
            ("linear", "unknown schedule 'linear'"),
            ("constant:3", "too many fields after constant"),
            ("step", "step needs a STEP_SIZE"),
            ("step:0", "STEP_SIZE must be a positive integer, found '0'"),
            ("step:10:x", "GAMMA must be a number, found 'x'"),
            (
                "step:10:0.1:2",
                "too many fields after step:STEP_SIZE:GAMMA",
            ),
            ("cosine:-4", "T_MAX must be a positive integer, found '-4'"),
            ("warmup", "warmup needs EPOCHS and a SCHEDULE"),
            ("warmup:5", "warmup needs the SCHEDULE that follows it"),
            ("warmup:5:0.1", "warmup needs the SCHEDULE that follows it"),
            (
                "warmup:90:cosine",
                "cosine without T_MAX needs epochs left to anneal over",
            ),
        ];
        for (spec, problem) in cases {
            let err = Schedule::parse(spec, 0.1, 90).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }));
            assert_eq!(
                err.to_string(),
                format!("lr schedule: '{spec}': {problem}; expected {GRAMMAR}")
            );
        }
        let invalid = [
            ("step:10:-0.1", 0.1, "gamma = -0.1 must be finite and > 0"),
            (
                "warmup:5:2:cosine",
                0.1,
                "warm-up start factor = 2 must be in (0, 1]",
            ),
            (
                "warmup:5:warmup:5:constant",
                0.1,
                "a warm-up cannot follow a warm-up",
            ),
            ("cosine:10:-1", 0.1, "eta_min = -1 must be finite and >= 0"),
            (
                "constant",
                -0.1,
                "base lr = -0.1 is invalid: expected a finite value >= 0",
            ),
        ];
        for (spec, base_lr, message) in invalid {
            let err = Schedule::parse(spec, base_lr, 90).unwrap_err();
            assert_eq!(err.to_string(), format!("lr schedule: {message}"), "{spec}");
        }
    }
}
