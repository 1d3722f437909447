//! Plots of a run directory (PNG and SVG, plotters): the training curves (the terms that
//! should fall, with the phases of the training marked), energy histograms of the generator
//! against the MCMC samples, the free-energy profile with the exact curve where known, 2-D
//! scatters, and free-energy surfaces with a colour bar in kT.
//!
//! Plots are read back from the CSV files the other stages wrote, so they can be redrawn
//! without rerunning anything. Text is drawn in DejaVu Sans, embedded in the binary
//! (`assets/fonts/`, with its licence), so no plot loses its text for want of a system font;
//! `BOLTZGEN_FONT` names another TrueType file.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use serde::Serialize;

use crate::error::{Error, Result};

/// What the plotting stage did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlotSummary {
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Why plots were skipped, if they were.
    pub skipped: Option<String>,
}

const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 560);

/// DejaVu Sans 2.37 (`assets/fonts/README.md` says where it comes from and its licence).
const EMBEDDED_FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the font with plotters once: `BOLTZGEN_FONT` when it names a usable TrueType
/// file, else the embedded one. False only if neither registers.
fn font_available() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        if let Some(path) = std::env::var_os("BOLTZGEN_FONT") {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    // plotters keeps fonts for the life of the process.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                        return true;
                    }
                    tracing::warn!(
                        "BOLTZGEN_FONT={}: not a usable TrueType font; plots use DejaVu Sans",
                        PathBuf::from(&path).display()
                    );
                }
                Err(e) => tracing::warn!(
                    "BOLTZGEN_FONT={}: {e}; plots use DejaVu Sans",
                    PathBuf::from(&path).display()
                ),
            }
        }
        plotters::style::register_font(FAMILY, FontStyle::Normal, EMBEDDED_FONT).is_ok()
    })
}

/// A step where training changed what it optimises, marked on the training plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// The first step of the phase.
    pub step: usize,
    /// What starts there ("energy term joins", "β/β₀ = 0.25").
    pub label: String,
}

impl Phase {
    /// A phase starting at `step`.
    pub fn new(step: usize, label: String) -> Self {
        Self { step, label }
    }
}

/// Columns of a CSV file by header name (missing or empty cells are NaN).
pub(crate) fn read_columns(path: &Path, names: &[&str]) -> Option<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let index: Vec<Option<usize>> = names
        .iter()
        .map(|n| header.iter().position(|h| h == n))
        .collect();
    let mut columns = vec![Vec::new(); names.len()];
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        for (col, i) in columns.iter_mut().zip(&index) {
            col.push(
                i.and_then(|i| fields.get(i))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN),
            );
        }
    }
    Some(columns)
}

fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let pad = if hi > lo { 0.04 * (hi - lo) } else { 1.0 };
    Some((lo - pad, hi + pad))
}

/// Values at the 0.5 % and 99.5 % quantiles: energy histograms ignore the far tail.
fn central_range(values: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    range([at(0.005), at(0.995)].into_iter())
}

/// A normalised histogram as a step line: (x, density) corner points.
fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    let mut counts = vec![0usize; bins];
    let width = (hi - lo) / bins as f64;
    let mut n = 0;
    for &v in values.iter().filter(|v| v.is_finite()) {
        n += 1;
        if v >= lo && v < hi {
            counts[((v - lo) / width) as usize % bins] += 1;
        }
    }
    let mut points = Vec::with_capacity(2 * bins + 2);
    points.push((lo, 0.0));
    for (b, &c) in counts.iter().enumerate() {
        let d = c as f64 / (n.max(1) as f64 * width);
        points.push((lo + b as f64 * width, d));
        points.push((lo + (b + 1) as f64 * width, d));
    }
    points.push((hi, 0.0));
    points
}

type Drawn = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// One line series with its legend entry.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// A chart of lines, optional points with error bars, optional scatter, and optional phase
/// marks (vertical lines at the steps where training changed, labelled).
struct Chart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    lines: Vec<Line>,
    error_bars: Vec<(f64, f64, f64)>,
    scatter: Vec<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    markers: &'a [Phase],
}

/// At most this many phase marks carry a label (the others are drawn unlabelled): SMC can
/// have dozens of rungs.
const LABELLED_MARKS: usize = 8;

impl Chart<'_> {
    fn new<'a>(title: &'a str, x_label: &'a str, y_label: &'a str, lines: Vec<Line>) -> Chart<'a> {
        Chart {
            title,
            x_label,
            y_label,
            lines,
            error_bars: Vec::new(),
            scatter: Vec::new(),
            y_range: None,
            markers: &[],
        }
    }

    /// Draws the chart into `area` (filled and presented by the caller).
    fn draw_into<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.error_bars.iter().map(|p| p.0))
            .chain(self.scatter.iter().map(|p| p.0));
        let (x0, x1) = range(xs).ok_or("nothing to plot")?;
        let (y0, y1) = match self.y_range {
            Some(r) => r,
            None => range(
                self.lines
                    .iter()
                    .flat_map(|l| l.points.iter().map(|p| p.1))
                    .chain(self.error_bars.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]))
                    .chain(self.scatter.iter().map(|p| p.1)),
            )
            .ok_or("nothing to plot")?,
        };
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let steps_axis = self.x_label == "step";
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_label_formatter(&|v: &f64| {
                if steps_axis {
                    format!("{v:.0}")
                } else {
                    format!("{v}")
                }
            })
            .label_style((FAMILY, 14))
            .draw()
            .map_err(err)?;
        let every = self.markers.len().div_ceil(LABELLED_MARKS).max(1);
        for (k, m) in self.markers.iter().enumerate() {
            let x = m.step as f64;
            if !(x0..=x1).contains(&x) {
                continue;
            }
            let grey = RGBColor(110, 110, 110);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, y0), (x, y1)],
                    6,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(err)?;
            if k % every == 0 {
                // Staggered in two rows so that neighbouring labels do not overlap.
                let row = (k / every) % 2;
                let y = y1 - (y1 - y0) * (0.03 + 0.06 * row as f64);
                chart
                    .draw_series([Text::new(
                        m.label.clone(),
                        (x, y),
                        (FAMILY, 12).into_font().color(&grey),
                    )])
                    .map_err(err)?;
            }
        }
        if !self.scatter.is_empty() {
            let style = BLUE.mix(0.25).filled();
            chart
                .draw_series(self.scatter.iter().map(|&p| Circle::new(p, 1, style)))
                .map_err(err)?;
        }
        if !self.error_bars.is_empty() {
            chart
                .draw_series(self.error_bars.iter().map(|&(x, y, e)| {
                    ErrorBar::new_vertical(x, y - e, y, y + e, BLACK.filled(), 4)
                }))
                .map_err(err)?
                .label("reweighted ± 1 s.e.")
                .legend(|(x, y)| Circle::new((x + 10, y), 3, BLACK.filled()));
        }
        for line in &self.lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied().filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        if self.lines.len() + usize::from(!self.error_bars.is_empty()) > 0 {
            // Training curves fall from the upper left: their legend goes where they are not,
            // and leaves the top to the phase labels.
            let position = if steps_axis {
                SeriesLabelPosition::LowerLeft
            } else {
                SeriesLabelPosition::UpperRight
            };
            chart
                .configure_series_labels()
                .position(position)
                .label_font((FAMILY, 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

impl Plot for Chart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Drawn {
        root.fill(&WHITE).map_err(err)?;
        self.draw_into(&root)?;
        root.present().map_err(err)
    }
}

/// Charts stacked vertically in one figure (the training terms, one panel each).
struct Panels<'a>(Vec<Chart<'a>>);

impl Plot for Panels<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Drawn {
        root.fill(&WHITE).map_err(err)?;
        let areas = root.split_evenly((self.0.len().max(1), 1));
        for (chart, area) in self.0.iter().zip(&areas) {
            chart.draw_into(area)?;
        }
        root.present().map_err(err)
    }

    fn size(&self) -> (u32, u32) {
        (SIZE.0, SIZE.1 * 3 / 5 * self.0.len().max(1) as u32)
    }
}

/// A plot that can be drawn on any plotters backend.
trait Plot {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Drawn;

    /// The figure's size in pixels.
    fn size(&self) -> (u32, u32) {
        SIZE
    }

    /// Writes `<stem>.png` and `<stem>.svg`.
    fn write(&self, dir: &Path, stem: &str, summary: &mut PlotSummary) -> Result<()> {
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        let plot_error = |path: &Path, e: String| Error::Io {
            path: path.to_owned(),
            source: std::io::Error::other(format!("cannot draw the plot: {e}")),
        };
        let size = self.size();
        self.draw(BitMapBackend::new(&png, size).into_drawing_area())
            .map_err(|e| plot_error(&png, e))?;
        self.draw(SVGBackend::new(&svg, size).into_drawing_area())
            .map_err(|e| plot_error(&svg, e))?;
        summary.written.push(png);
        summary.written.push(svg);
        Ok(())
    }
}

/// Draws every plot whose data is in `dir`; `scatter` holds (x₀, x₁) pairs of samples for
/// 2-D systems, `phases` the steps to mark on the training plot.
///
/// # Errors
/// [`Error::Io`] naming the file if a plot cannot be written.
pub fn plot_run(
    dir: &Path,
    scatters: &[Scatter],
    surfaces: &[Surface],
    phases: &[Phase],
) -> Result<PlotSummary> {
    let mut summary = PlotSummary::default();
    if !font_available() {
        summary.skipped = Some(
            "no TrueType font found (set BOLTZGEN_FONT to a .ttf file, or install DejaVu fonts)"
                .into(),
        );
        return Ok(summary);
    }
    if let Some(panels) = training_panels(dir, phases) {
        Panels(panels).write(dir, "train_loss", &mut summary)?;
    }
    let mcmc = read_columns(&dir.join("samples.csv"), &["energy"]).map(|mut c| c.remove(0));
    let generator = read_columns(&dir.join("weights.csv"), &["energy"]).map(|mut c| c.remove(0));
    if mcmc.is_some() || generator.is_some() {
        let all: Vec<f64> = mcmc
            .iter()
            .chain(generator.iter())
            .flatten()
            .copied()
            .collect();
        if let Some((lo, hi)) = central_range(&all) {
            let mut lines = Vec::new();
            if let Some(u) = &mcmc {
                lines.push(Line {
                    label: "MCMC samples".into(),
                    points: histogram(u, lo, hi, 60),
                    color: BLUE,
                });
            }
            if let Some(u) = &generator {
                lines.push(Line {
                    label: "generator draws (unweighted)".into(),
                    points: histogram(u, lo, hi, 60),
                    color: RED,
                });
            }
            Chart {
                title: "Energy distributions",
                x_label: "U",
                y_label: "density",
                lines,
                error_bars: Vec::new(),
                scatter: Vec::new(),
                y_range: None,
                markers: &[],
            }
            .write(dir, "energy_histogram", &mut summary)?;
        }
    }
    if let Some(c) = read_columns(
        &dir.join("profile.csv"),
        &["cv", "free_energy", "std_error", "exact"],
    ) {
        let error_bars: Vec<(f64, f64, f64)> = (0..c[0].len())
            .filter(|&i| c[1][i].is_finite())
            .map(|i| (c[0][i], c[1][i], c[2][i].max(0.0)))
            .collect();
        let exact: Vec<(f64, f64)> = (0..c[0].len())
            .filter(|&i| c[3][i].is_finite())
            .map(|i| (c[0][i], c[3][i]))
            .collect();
        let lines = if exact.is_empty() {
            Vec::new()
        } else {
            vec![Line {
                label: "exact".into(),
                points: exact,
                color: RED,
            }]
        };
        Chart {
            title: "Free-energy profile",
            x_label: "collective variable",
            y_label: "F (lowest bin = 0)",
            lines,
            error_bars,
            scatter: Vec::new(),
            y_range: None,
            markers: &[],
        }
        .write(dir, "free_energy_profile", &mut summary)?;
    }
    for s in scatters.iter().filter(|s| !s.points.is_empty()) {
        Chart {
            title: &s.title,
            x_label: &s.x_label,
            y_label: &s.y_label,
            lines: Vec::new(),
            error_bars: Vec::new(),
            scatter: s.points.clone(),
            y_range: None,
            markers: &[],
        }
        .write(dir, &s.name, &mut summary)?;
    }
    for s in surfaces.iter().filter(|s| !s.points.is_empty()) {
        s.write(dir, &s.name, &mut summary)?;
    }
    Ok(summary)
}

/// A noisy per-step series drawn faintly, with its running mean over 1/50 of the run on top.
fn per_step(label: &str, raw: Vec<(f64, f64)>, faint: RGBColor, color: RGBColor) -> Vec<Line> {
    let window = (raw.len() / 50).max(1);
    let smooth: Vec<(f64, f64)> = raw
        .windows(window)
        .map(|w| {
            let mean = w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64;
            (w[w.len() - 1].0, mean)
        })
        .collect();
    vec![
        Line {
            label: format!("{label} per step"),
            points: raw,
            color: faint,
        },
        Line {
            label: format!("running mean ({window} steps)"),
            points: smooth,
            color,
        },
    ]
}

/// The training plot from `train_loss.csv`: one panel per term that should fall (the
/// maximum-likelihood NLL of the frames, with the validation NLL; the reverse-KL free energy),
/// rather than their weighted sum, which jumps up by design where a term joins. The phases are
/// marked on every panel. None when the run has no training curve.
fn training_panels<'a>(dir: &Path, phases: &'a [Phase]) -> Option<Vec<Chart<'a>>> {
    let c = read_columns(
        &dir.join("train_loss.csv"),
        &[
            "step",
            "loss",
            "validation_nll",
            "forward_nll",
            "free_energy",
        ],
    )?;
    let series = |k: usize| -> Vec<(f64, f64)> {
        c[0].iter()
            .zip(&c[k])
            .filter(|(_, v)| v.is_finite())
            .map(|(s, v)| (*s, *v))
            .collect()
    };
    let (loss, validation, forward, free_energy) = (series(1), series(2), series(3), series(4));
    let mut panels = Vec::new();
    let mut panel = |title: &'static str, y_label: &'static str, lines: Vec<Line>| {
        // Early values can be orders of magnitude above the rest: show the central range.
        let all: Vec<f64> = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .collect();
        let mut chart = Chart::new(title, "step", y_label, lines);
        chart.y_range = central_range(&all);
        chart.markers = phases;
        panels.push(chart);
    };
    let light_blue = RGBColor(175, 200, 245);
    let has_terms = !forward.is_empty() || !validation.is_empty() || !free_energy.is_empty();
    if !forward.is_empty() || !validation.is_empty() {
        let mut lines = per_step("−log q", forward, light_blue, BLUE);
        if !validation.is_empty() {
            lines.push(Line {
                label: "held-out frames".into(),
                points: validation,
                color: RED,
            });
        }
        panel(
            "Maximum likelihood: −⟨log q⟩ of the frames fitted (data, or each rung's population)",
            "−log q (nats)",
            lines,
        );
    }
    if !free_energy.is_empty() {
        panel(
            "Energy: free energy ⟨βU + log q⟩ of the flow's draws (falls towards −log Z)",
            "F (nats)",
            per_step(
                "F",
                free_energy,
                RGBColor(245, 190, 160),
                RGBColor(200, 70, 0),
            ),
        );
    }
    if !has_terms && !loss.is_empty() {
        panel("Training", "loss", per_step("loss", loss, light_blue, BLUE));
    }
    (!panels.is_empty()).then_some(panels)
}

/// A free-energy surface `F(x, y) = −kT ln p(x, y)` over a plane of two collective variables
/// (a Ramachandran plot for φ and ψ), from points with optional log-weights (importance
/// weights of generator draws), drawn as a heat map in units of kT with the lowest bin at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Surface {
    /// File stem (`fes_samples` → `fes_samples.png` and `.svg`).
    pub name: String,
    /// Title above the plot.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// Natural-log weights of the points (None: equal weights).
    pub log_weights: Option<Vec<f64>>,
    /// `[[x_lo, x_hi], [y_lo, y_hi]]`; the points' range when None.
    pub range: Option<[[f64; 2]; 2]>,
}

/// Bins per axis of a free-energy surface, and the top of its colour scale (kT).
const SURFACE_BINS: usize = 60;
const SURFACE_CAP: f64 = 10.0;

impl Surface {
    /// `F / kT` per bin (row-major, x fastest), NaN where a bin has no weight, with the
    /// axis ranges used.
    pub fn free_energies(&self) -> (Vec<f64>, [[f64; 2]; 2]) {
        let [xr, yr] = self.range.unwrap_or_else(|| {
            let r = |v: Vec<f64>| range(v.into_iter()).map_or([0.0, 1.0], |(a, b)| [a, b]);
            [
                r(self.points.iter().map(|p| p.0).collect()),
                r(self.points.iter().map(|p| p.1).collect()),
            ]
        });
        let n = SURFACE_BINS;
        let max_log_w = self
            .log_weights
            .as_ref()
            .map(|w| {
                w.iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .unwrap_or(0.0);
        let mut mass = vec![0.0; n * n];
        for (i, &(x, y)) in self.points.iter().enumerate() {
            let w = match &self.log_weights {
                Some(lw) if lw[i].is_finite() => (lw[i] - max_log_w).exp(),
                Some(_) => 0.0,
                None => 1.0,
            };
            let bin = |v: f64, [lo, hi]: [f64; 2]| {
                let b = ((v - lo) / (hi - lo) * n as f64).floor();
                (b >= 0.0 && b < n as f64).then_some(b as usize)
            };
            if let (Some(bx), Some(by)) = (bin(x, xr), bin(y, yr)) {
                mass[by * n + bx] += w;
            }
        }
        let top = mass.iter().copied().fold(0.0, f64::max);
        let f = mass
            .iter()
            .map(|&m| if m > 0.0 { -(m / top).ln() } else { f64::NAN })
            .collect();
        (f, [xr, yr])
    }
}

/// Width in pixels of a surface's colour-bar column.
const COLOUR_BAR_WIDTH: u32 = 120;

impl Plot for Surface {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Drawn {
        root.fill(&WHITE).map_err(err)?;
        let (map, bar) = root.split_horizontally(SIZE.0 - COLOUR_BAR_WIDTH);
        let (f, [xr, yr]) = self.free_energies();
        let mut chart = ChartBuilder::on(&map)
            .caption(&self.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(xr[0]..xr[1], yr[0]..yr[1])
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 13))
            .draw()
            .map_err(err)?;
        let n = SURFACE_BINS;
        let (dx, dy) = ((xr[1] - xr[0]) / n as f64, (yr[1] - yr[0]) / n as f64);
        chart
            .draw_series(
                f.iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(i, &v)| {
                        let (bx, by) = ((i % n) as f64, (i / n) as f64);
                        let corner = |a: f64, b: f64| (xr[0] + a * dx, yr[0] + b * dy);
                        Rectangle::new(
                            [corner(bx, by), corner(bx + 1.0, by + 1.0)],
                            heat_color(v / SURFACE_CAP).filled(),
                        )
                    }),
            )
            .map_err(err)?;
        map.draw(&Text::new(
            "lowest bin: F = 0; white: no weight",
            (70, SIZE.1 as i32 - 18),
            (FAMILY, 13),
        ))
        .map_err(err)?;
        draw_colour_bar(&bar)?;
        root.present().map_err(err)
    }
}

/// The colour scale of the surfaces: F / kT from 0 (dark) to `SURFACE_CAP` (light; higher
/// values are drawn in the top colour, so the top tick reads "≥ cap").
fn draw_colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> Drawn {
    let mut chart = ChartBuilder::on(area)
        .margin_top(52)
        .margin_bottom(52)
        .margin_right(12)
        .y_label_area_size(0)
        .right_y_label_area_size(58)
        .build_cartesian_2d(0.0..1.0, 0.0..SURFACE_CAP)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v: &f64| {
            if *v >= SURFACE_CAP - 1e-9 {
                format!("≥ {v:.0}")
            } else {
                format!("{v:.0}")
            }
        })
        .label_style((FAMILY, 13))
        .draw()
        .map_err(err)?;
    let steps = 100;
    chart
        .draw_series((0..steps).map(|k| {
            let (lo, hi) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            Rectangle::new(
                [(0.0, lo * SURFACE_CAP), (1.0, hi * SURFACE_CAP)],
                heat_color(lo).filled(),
            )
        }))
        .map_err(err)?;
    area.draw(&Text::new("F / kT", (8, 22), (FAMILY, 15)))
        .map_err(err)?;
    Ok(())
}

/// A perceptual dark-to-light colour ramp (close to viridis) for `t` in [0, 1] (clamped).
fn heat_color(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A 2-D scatter plot: points, axis labels, and the file stem it is written to.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    /// File stem (`samples_2d` → `samples_2d.png` and `.svg`).
    pub name: String,
    /// Title above the plot.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_integrates_to_one_inside_the_range() {
        let v: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let h = histogram(&v, 0.0, 1.0, 10);
        let area: f64 = h
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * w[0].1.min(w[1].1))
            .sum();
        assert!((area - 1.0).abs() < 1e-9, "{area}");
    }

    #[test]
    fn plots_are_written_from_csv_files() {
        // The embedded font: plots never go without text.
        assert!(font_available());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("train_loss.csv"),
            "step,loss,validation_nll,forward_nll,free_energy\n0,3,,3,\n1,2,2.5,2,\n2,1.5,,1,4\n3,1.4,,1,3\n",
        )
        .unwrap();
        std::fs::write(
            d.join("samples.csv"),
            "frame,chain,step,energy\n0,0,0,1.0\n1,0,1,2.0\n2,0,2,1.5\n",
        )
        .unwrap();
        std::fs::write(
            d.join("profile.csv"),
            "cv,free_energy,std_error,exact\n0,0,0.1,0\n1,1,0.2,1.1\n2,,,3\n",
        )
        .unwrap();
        let scatter = Scatter {
            name: "samples_2d".into(),
            title: "Samples".into(),
            x_label: "x₀".into(),
            y_label: "x₁".into(),
            points: vec![(0.0, 1.0), (1.0, 0.5)],
        };
        let surface = Surface {
            name: "fes".into(),
            title: "Surface".into(),
            x_label: "φ".into(),
            y_label: "ψ".into(),
            points: vec![(0.0, 0.0), (0.1, 0.2), (0.5, 0.5), (0.9, 0.1)],
            log_weights: None,
            range: Some([[0.0, 1.0], [0.0, 1.0]]),
        };
        let phases = [Phase::new(2, "energy term joins".into())];
        let s = plot_run(d, &[scatter], &[surface], &phases).unwrap();
        assert_eq!(s.written.len(), 10, "{s:?}");
        let png = std::fs::read(d.join("free_energy_profile.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // The training plot: a panel per term that should fall, the phase marked.
        let svg = std::fs::read_to_string(d.join("train_loss.svg")).unwrap();
        for words in [
            "held-out frames",
            "Maximum likelihood",
            "free energy",
            "energy term joins",
        ] {
            assert!(svg.starts_with("<svg") && svg.contains(words), "{words}");
        }
        // The surface: a colour bar in kT.
        let svg = std::fs::read_to_string(d.join("fes.svg")).unwrap();
        assert!(svg.contains("F / kT"), "no colour bar");
    }
}
