//! Transitions between user-defined states of a collective variable, with hysteresis.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A metastable state: the collective variable lies in `[lower, upper]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateInterval {
    /// A name for reports.
    pub name: String,
    /// Lower bound of the state's core.
    pub lower: f64,
    /// Upper bound of the state's core.
    pub upper: f64,
}

/// Transition counts between states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transitions {
    /// `counts[i][j]`: transitions from state i to state j.
    pub counts: Vec<Vec<u64>>,
    /// All transitions.
    pub total: u64,
    /// Steps spent with each state as the last one visited (the committed state), and
    /// before any state was reached (last entry).
    pub committed_steps: Vec<u64>,
}

impl Transitions {
    /// Adds the counts of another series over the same states (e.g. another chain).
    ///
    /// # Errors
    /// [`Error::Dimension`] if the two were counted over different numbers of states.
    pub fn add(&mut self, other: &Transitions) -> Result<()> {
        if other.counts.len() != self.counts.len() {
            return Err(Error::Dimension {
                what: "states of the transitions being added".into(),
                expected: self.counts.len(),
                got: other.counts.len(),
            });
        }
        for (row, other_row) in self.counts.iter_mut().zip(&other.counts) {
            for (a, b) in row.iter_mut().zip(other_row) {
                *a += b;
            }
        }
        for (a, b) in self.committed_steps.iter_mut().zip(&other.committed_steps) {
            *a += b;
        }
        self.total += other.total;
        Ok(())
    }
}

/// Counts transitions of a series of collective-variable values between `states`.
///
/// A transition is counted only when the series enters the *core* of another state; values
/// between cores keep the last state (hysteresis), so recrossings of a dividing surface do not
/// inflate the count. For a double well: cores `x < −1` and `x > 1`.
///
/// # Errors
/// [`Error::InvalidArgument`] for overlapping or empty states.
pub fn count_transitions(series: &[f64], states: &[StateInterval]) -> Result<Transitions> {
    check_states(states)?;
    let k = states.len();
    let mut counts = vec![vec![0u64; k]; k];
    let mut committed_steps = vec![0u64; k + 1];
    let mut current: Option<usize> = None;
    let mut total = 0;
    for &v in series {
        if let Some(s) = states.iter().position(|s| v >= s.lower && v <= s.upper) {
            if let Some(c) = current {
                if c != s {
                    counts[c][s] += 1;
                    total += 1;
                }
            }
            current = Some(s);
        }
        committed_steps[current.unwrap_or(k)] += 1;
    }
    Ok(Transitions {
        counts,
        total,
        committed_steps,
    })
}

/// Checks that every state's interval is ordered and that no two cores overlap or touch.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the state(s).
pub fn check_states(states: &[StateInterval]) -> Result<()> {
    for (i, a) in states.iter().enumerate() {
        if a.lower.is_nan() || a.upper.is_nan() || a.lower > a.upper {
            return Err(Error::InvalidArgument {
                name: format!("states[{i}] ({})", a.name),
                message: format!("lower {} is above upper {}", a.lower, a.upper),
            });
        }
        for b in &states[i + 1..] {
            if a.lower <= b.upper && b.lower <= a.upper {
                return Err(Error::InvalidArgument {
                    name: format!("states `{}` and `{}`", a.name, b.name),
                    message: "state cores overlap (they must not even touch)".into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wells() -> Vec<StateInterval> {
        vec![
            StateInterval {
                name: "left".into(),
                lower: f64::NEG_INFINITY,
                upper: -1.0,
            },
            StateInterval {
                name: "right".into(),
                lower: 1.0,
                upper: f64::INFINITY,
            },
        ]
    }

    #[test]
    fn recrossings_are_not_transitions() {
        let series = [
            0.0, -1.5, -0.2, 0.3, -0.1, 0.5, -1.2, 0.4, 1.1, 0.9, 1.5, -2.0,
        ];
        let t = count_transitions(&series, &wells()).unwrap();
        assert_eq!(t.total, 2);
        assert_eq!(t.counts, vec![vec![0, 1], vec![1, 0]]);
        assert_eq!(t.committed_steps, vec![8, 3, 1]);
        let mut twice = t.clone();
        twice.add(&t).unwrap();
        assert_eq!((twice.total, twice.counts[0][1]), (4, 2));
    }

    #[test]
    fn overlapping_states_are_refused() {
        let mut s = wells();
        s[1].lower = -2.0;
        assert!(count_transitions(&[0.0], &s).is_err());
    }
}
