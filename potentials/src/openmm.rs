//! A molecular force field read from an OpenMM serialized `System` (XML), evaluated in Rust.
//!
//! OpenMM users build systems from AMBER, CHARMM or OpenFF files and can hand any of them to
//! boltzgen with `XmlSerializer.serialize(system)`. No OpenMM is needed at run time.
//!
//! Supported, in OpenMM's units (nm, kJ/mol, elementary charges, radians):
//! - `HarmonicBondForce`: `½ k (r − d)²`;
//! - `HarmonicAngleForce`: `½ k (θ − a)²`;
//! - `PeriodicTorsionForce`: `k (1 + cos(n φ − phase))`, φ the IUPAC dihedral;
//! - `NonbondedForce` with `NoCutoff` or `CutoffNonPeriodic`: Coulomb `C qᵢqⱼ / r` and
//!   Lennard-Jones `4ε[(σ/r)¹² − (σ/r)⁶]` with Lorentz–Berthelot combination
//!   (`σ = (σᵢ + σⱼ)/2`, `ε = √(εᵢεⱼ)`) over all pairs, except that the exceptions list
//!   replaces a pair's parameters (1-4 scaling) or removes it (exclusions, `q = ε = 0`).
//!   With `CutoffNonPeriodic`, pairs beyond the cutoff are dropped and Coulomb uses OpenMM's
//!   reaction field, `C qᵢqⱼ (1/r + k_rf r² − c_rf)`, with
//!   `k_rf = (ε_rf − 1) / ((2ε_rf + 1) r_c³)` and `c_rf = 3ε_rf / ((2ε_rf + 1) r_c)`;
//!   exceptions keep plain Coulomb and no cutoff, as OpenMM's reference platform computes
//!   them. (Only the `NoCutoff` path is checked against OpenMM's own energies here.)
//! - `CMMotionRemover` is accepted: it changes dynamics, not the energy.
//!
//! Anything else is refused by name with its line: other forces (CMAP, GBSA, custom forces),
//! periodic methods (Ewald, PME, periodic cutoffs), switching functions, parameter offsets,
//! constraints and virtual sites. Nothing is silently ignored.
//!
//! Nonbonded pairs are listed once at load time (all N(N−1)/2 pairs with their combined
//! parameters), which suits the small molecules in vacuum this is for.
//!
//! Size: one reader and one evaluator for the System XML's forces, which share the parsed
//! parameter tables; past line ~630 the file is its tests against hand-computed energies.

use std::collections::HashMap;
use std::path::Path;

use roxmltree::{Document, Node};

use crate::error::{PotentialError, Result};
use crate::potential::Potential;

/// Coulomb's constant in OpenMM's units, `1/(4π ε₀)` in kJ mol⁻¹ nm e⁻² (CODATA 2018 values
/// of e, ε₀ and N_A).
pub const ONE_4PI_EPS0: f64 = 138.935_457_644_382;

/// One bonded or nonbonded energy term per force, as OpenMM's force groups report them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyTerms {
    /// `HarmonicBondForce`.
    pub bond: f64,
    /// `HarmonicAngleForce`.
    pub angle: f64,
    /// `PeriodicTorsionForce`.
    pub torsion: f64,
    /// `NonbondedForce` (Coulomb + Lennard-Jones, exceptions included).
    pub nonbonded: f64,
}

impl EnergyTerms {
    /// The potential energy: the sum of the terms.
    pub fn total(&self) -> f64 {
        self.bond + self.angle + self.torsion + self.nonbonded
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Bond {
    atoms: [usize; 2],
    length: f64,
    k: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Angle {
    atoms: [usize; 3],
    angle: f64,
    k: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Torsion {
    atoms: [usize; 4],
    periodicity: f64,
    phase: f64,
    k: f64,
}

/// A nonbonded pair with combined parameters: `C qᵢqⱼ`, σ, and 4ε.
#[derive(Debug, Clone, PartialEq)]
struct Pair {
    atoms: [usize; 2],
    coulomb: f64,
    sigma: f64,
    four_epsilon: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Cutoff {
    None,
    ReactionField { cutoff: f64, k_rf: f64, c_rf: f64 },
}

/// A force field read from an OpenMM System XML (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenMmForceField {
    masses: Vec<f64>,
    bonds: Vec<Bond>,
    angles: Vec<Angle>,
    torsions: Vec<Torsion>,
    /// Ordinary pairs: cutoff and reaction field apply.
    pairs: Vec<Pair>,
    /// Exceptions with nonzero parameters: plain Coulomb, no cutoff.
    exceptions: Vec<Pair>,
    cutoff: Cutoff,
}

/// Reads attributes of one XML element, with errors naming the file, line and attribute.
struct Element<'a, 'input> {
    node: Node<'a, 'input>,
    doc: &'a Document<'input>,
    path: &'a Path,
}

impl<'a, 'input> Element<'a, 'input> {
    fn line(&self) -> usize {
        self.doc.text_pos_at(self.node.range().start).row as usize
    }

    fn error(&self, message: String) -> PotentialError {
        PotentialError::Parse {
            path: self.path.to_owned(),
            line: self.line(),
            message,
        }
    }

    fn float(&self, name: &str) -> Result<f64> {
        let text = self.node.attribute(name).ok_or_else(|| {
            self.error(format!(
                "<{}> has no attribute `{name}`",
                self.node.tag_name().name()
            ))
        })?;
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(format!(
                "<{}> attribute `{name}` = \"{text}\" is not a finite number",
                self.node.tag_name().name()
            ))),
        }
    }

    fn int(&self, name: &str) -> Result<i64> {
        let v = self.float(name)?;
        if v.fract() != 0.0 {
            return Err(self.error(format!(
                "<{}> attribute `{name}` = {v} is not an integer",
                self.node.tag_name().name()
            )));
        }
        Ok(v as i64)
    }

    fn atom(&self, name: &str, n: usize) -> Result<usize> {
        let i = self.int(name)?;
        if i < 0 || i as usize >= n {
            return Err(self.error(format!(
                "<{}> attribute `{name}` = {i} is not a particle index (the system has {n})",
                self.node.tag_name().name()
            )));
        }
        Ok(i as usize)
    }

    fn children(&self, tag: &str) -> Vec<Node<'a, 'input>> {
        self.node
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == tag)
            .collect()
    }

    fn child(&self, tag: &str) -> Option<Node<'a, 'input>> {
        self.node
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == tag)
    }
}

impl OpenMmForceField {
    /// Reads an OpenMM System XML file.
    ///
    /// # Errors
    /// [`PotentialError::Io`] if it cannot be read; [`PotentialError::Parse`] naming the line
    /// for malformed XML, a missing or bad attribute, an unsupported force or option.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PotentialError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_xml(&text, path)
    }

    /// Parses the XML text of a serialized System; `path` names it in errors.
    ///
    /// # Errors
    /// As [`OpenMmForceField::from_file`].
    pub fn from_xml(text: &str, path: &Path) -> Result<Self> {
        let doc = Document::parse(text).map_err(|e| PotentialError::Parse {
            path: path.to_owned(),
            line: e.pos().row as usize,
            message: format!("not well-formed XML: {e}"),
        })?;
        let element = |node| Element {
            node,
            doc: &doc,
            path,
        };
        let root = element(doc.root_element());
        if root.node.tag_name().name() != "System" {
            return Err(root.error(format!(
                "the root element is <{}>; an OpenMM serialized System has <System>",
                root.node.tag_name().name()
            )));
        }
        let particles = root
            .child("Particles")
            .ok_or_else(|| root.error("<System> has no <Particles>".into()))?;
        let particles = element(particles);
        let mut masses = Vec::new();
        for p in particles.children("Particle") {
            let p = element(p);
            if p.node.children().any(|c| c.is_element()) {
                return Err(p.error("virtual sites are not supported yet".into()));
            }
            masses.push(p.float("mass")?);
        }
        let n = masses.len();
        if n == 0 {
            return Err(particles.error("the system has no particles".into()));
        }
        if let Some(c) = root.child("Constraints") {
            let c = element(c);
            if let Some(first) = c.children("Constraint").first() {
                return Err(element(*first).error(
                    "constraints are not supported: boltzgen samples all Cartesian coordinates \
                     (serialize the System without constraints, e.g. constraints=None)"
                        .into(),
                ));
            }
        }
        let mut ff = Self {
            masses,
            bonds: Vec::new(),
            angles: Vec::new(),
            torsions: Vec::new(),
            pairs: Vec::new(),
            exceptions: Vec::new(),
            cutoff: Cutoff::None,
        };
        let forces = root
            .child("Forces")
            .ok_or_else(|| root.error("<System> has no <Forces>".into()))?;
        let mut seen_nonbonded = false;
        for force in element(forces).children("Force") {
            let f = element(force);
            let kind = force.attribute("type").unwrap_or("(no type)");
            if force.attribute("usesPeriodic") == Some("1") {
                return Err(f.error(format!(
                    "{kind} uses periodic boundary conditions, which are not supported yet"
                )));
            }
            match kind {
                "HarmonicBondForce" => {
                    let list = f.child("Bonds").map(element);
                    for b in list.iter().flat_map(|l| l.children("Bond")) {
                        let b = element(b);
                        ff.bonds.push(Bond {
                            atoms: [b.atom("p1", n)?, b.atom("p2", n)?],
                            length: b.float("d")?,
                            k: b.float("k")?,
                        });
                    }
                }
                "HarmonicAngleForce" => {
                    let list = f.child("Angles").map(element);
                    for a in list.iter().flat_map(|l| l.children("Angle")) {
                        let a = element(a);
                        ff.angles.push(Angle {
                            atoms: [a.atom("p1", n)?, a.atom("p2", n)?, a.atom("p3", n)?],
                            angle: a.float("a")?,
                            k: a.float("k")?,
                        });
                    }
                }
                "PeriodicTorsionForce" => {
                    let list = f.child("Torsions").map(element);
                    for t in list.iter().flat_map(|l| l.children("Torsion")) {
                        let t = element(t);
                        ff.torsions.push(Torsion {
                            atoms: [
                                t.atom("p1", n)?,
                                t.atom("p2", n)?,
                                t.atom("p3", n)?,
                                t.atom("p4", n)?,
                            ],
                            periodicity: t.int("periodicity")? as f64,
                            phase: t.float("phase")?,
                            k: t.float("k")?,
                        });
                    }
                }
                "NonbondedForce" => {
                    if seen_nonbonded {
                        return Err(f.error("a second NonbondedForce is not supported".into()));
                    }
                    seen_nonbonded = true;
                    ff.read_nonbonded(&f, n, &element)?;
                }
                "CMMotionRemover" => {}
                other => {
                    return Err(f.error(format!(
                        "force `{other}` is not supported yet (supported: HarmonicBondForce, \
                         HarmonicAngleForce, PeriodicTorsionForce, NonbondedForce with NoCutoff \
                         or CutoffNonPeriodic, CMMotionRemover)"
                    )))
                }
            }
        }
        Ok(ff)
    }

    fn read_nonbonded<'a, 'input>(
        &mut self,
        f: &Element<'a, 'input>,
        n: usize,
        element: &dyn Fn(Node<'a, 'input>) -> Element<'a, 'input>,
    ) -> Result<()> {
        // OpenMM's NonbondedMethod enumeration.
        let method = f.int("method")?;
        self.cutoff = match method {
            0 => Cutoff::None,
            1 => {
                let cutoff = f.float("cutoff")?;
                let eps_rf = f.float("rfDielectric")?;
                if cutoff <= 0.0 || eps_rf <= 0.0 {
                    return Err(f.error("cutoff and rfDielectric must be positive".into()));
                }
                Cutoff::ReactionField {
                    cutoff,
                    k_rf: (eps_rf - 1.0) / ((2.0 * eps_rf + 1.0) * cutoff.powi(3)),
                    c_rf: 3.0 * eps_rf / ((2.0 * eps_rf + 1.0) * cutoff),
                }
            }
            2..=5 => {
                let name = ["CutoffPeriodic", "Ewald", "PME", "LJPME"][(method - 2) as usize];
                return Err(f.error(format!(
                    "NonbondedForce method {name} needs a periodic box, which is not supported \
                     yet (use NoCutoff or CutoffNonPeriodic)"
                )));
            }
            other => {
                return Err(f.error(format!("NonbondedForce has unknown method {other}")));
            }
        };
        if f.node.attribute("useSwitchingFunction") == Some("1") && method != 0 {
            return Err(
                f.error("NonbondedForce with a switching function is not supported yet".into())
            );
        }
        for tag in ["GlobalParameters", "ParticleOffsets", "ExceptionOffsets"] {
            if let Some(list) = f.child(tag) {
                if list.children().any(|c| c.is_element()) {
                    return Err(element(list).error(format!(
                        "NonbondedForce <{tag}> (parameter offsets) is not supported yet"
                    )));
                }
            }
        }
        let particles = f
            .child("Particles")
            .map(element)
            .ok_or_else(|| f.error("NonbondedForce has no <Particles>".into()))?;
        let mut params = Vec::with_capacity(n);
        for p in particles.children("Particle") {
            let p = element(p);
            params.push((p.float("q")?, p.float("sig")?, p.float("eps")?));
        }
        if params.len() != n {
            return Err(particles.error(format!(
                "NonbondedForce has parameters for {} particles; the system has {n}",
                params.len()
            )));
        }
        let mut exception_of: HashMap<(usize, usize), Pair> = HashMap::new();
        if let Some(list) = f.child("Exceptions").map(element) {
            for e in list.children("Exception") {
                let e = element(e);
                let (i, j) = (e.atom("p1", n)?, e.atom("p2", n)?);
                if i == j {
                    return Err(e.error(format!("exception between particle {i} and itself")));
                }
                let key = (i.min(j), i.max(j));
                let pair = Pair {
                    atoms: [key.0, key.1],
                    coulomb: ONE_4PI_EPS0 * e.float("q")?,
                    sigma: e.float("sig")?,
                    four_epsilon: 4.0 * e.float("eps")?,
                };
                if exception_of.insert(key, pair).is_some() {
                    return Err(e.error(format!("a second exception for the pair ({i}, {j})")));
                }
            }
        }
        for i in 0..n {
            for j in i + 1..n {
                if exception_of.contains_key(&(i, j)) {
                    continue;
                }
                let (qi, si, ei) = params[i];
                let (qj, sj, ej) = params[j];
                self.pairs.push(Pair {
                    atoms: [i, j],
                    coulomb: ONE_4PI_EPS0 * qi * qj,
                    sigma: 0.5 * (si + sj),
                    four_epsilon: 4.0 * (ei * ej).sqrt(),
                });
            }
        }
        let mut exceptions: Vec<Pair> = exception_of
            .into_values()
            .filter(|p| p.coulomb != 0.0 || p.four_epsilon != 0.0)
            .collect();
        // A fixed order, so that sums do not depend on the hash map's.
        exceptions.sort_by_key(|p| p.atoms);
        self.exceptions = exceptions;
        Ok(())
    }

    /// Number of particles.
    pub fn n_particles(&self) -> usize {
        self.masses.len()
    }

    /// The bonded pairs of the `HarmonicBondForce` (the molecule's topology, e.g. for
    /// building internal coordinates), in the file's order.
    pub fn bonds(&self) -> Vec<(usize, usize)> {
        self.bonds
            .iter()
            .map(|b| (b.atoms[0], b.atoms[1]))
            .collect()
    }

    /// Particle masses (daltons), in the System's order.
    pub fn masses(&self) -> &[f64] {
        &self.masses
    }

    /// The energy of each force at `x` (nm), in kJ/mol.
    ///
    /// # Errors
    /// [`PotentialError::WrongLength`] or [`PotentialError::NonFiniteCoordinate`].
    pub fn energy_terms(&self, x: &[f64]) -> Result<EnergyTerms> {
        crate::potential::check_configuration(x, self.dim())?;
        Ok(self.evaluate(x, None))
    }

    fn evaluate(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> EnergyTerms {
        if let Some(g) = grad.as_deref_mut() {
            g.iter_mut().for_each(|v| *v = 0.0);
        }
        let pos = |i: usize| -> [f64; 3] { [x[3 * i], x[3 * i + 1], x[3 * i + 2]] };
        let add = |g: &mut Option<&mut [f64]>, i: usize, f: [f64; 3]| {
            if let Some(g) = g.as_deref_mut() {
                for k in 0..3 {
                    g[3 * i + k] += f[k];
                }
            }
        };
        let mut terms = EnergyTerms::default();

        for b in &self.bonds {
            let d = sub(pos(b.atoms[0]), pos(b.atoms[1]));
            let r = norm(d);
            let stretch = r - b.length;
            terms.bond += 0.5 * b.k * stretch * stretch;
            if grad.is_some() && r > 0.0 {
                let g = scale(d, b.k * stretch / r);
                add(&mut grad, b.atoms[0], g);
                add(&mut grad, b.atoms[1], scale(g, -1.0));
            }
        }

        for a in &self.angles {
            let [i, j, k] = a.atoms;
            let u = sub(pos(i), pos(j));
            let v = sub(pos(k), pos(j));
            let n = cross(u, v);
            let n_norm = norm(n);
            let theta = n_norm.atan2(dot(u, v));
            let delta = theta - a.angle;
            terms.angle += 0.5 * a.k * delta * delta;
            if grad.is_some() && n_norm > 0.0 {
                // ∂θ/∂xᵢ = (u × n)/(|u|²|n|), ∂θ/∂x_k = (n × v)/(|v|²|n|).
                let de = a.k * delta;
                let gi = scale(cross(u, n), de / (dot(u, u) * n_norm));
                let gk = scale(cross(n, v), de / (dot(v, v) * n_norm));
                add(&mut grad, i, gi);
                add(&mut grad, k, gk);
                add(&mut grad, j, scale(add3(gi, gk), -1.0));
            }
        }

        for t in &self.torsions {
            let [a, b, c, d] = t.atoms;
            let b1 = sub(pos(b), pos(a));
            let b2 = sub(pos(c), pos(b));
            let b3 = sub(pos(d), pos(c));
            let n1 = cross(b1, b2);
            let n2 = cross(b2, b3);
            let b2_norm = norm(b2);
            // As `dihedral`, reusing the cross products for the gradient.
            let phi = (b2_norm * dot(b1, n2)).atan2(dot(n1, n2));
            let arg = t.periodicity * phi - t.phase;
            terms.torsion += t.k * (1.0 + arg.cos());
            let (n1_sq, n2_sq) = (dot(n1, n1), dot(n2, n2));
            if grad.is_some() && n1_sq > 0.0 && n2_sq > 0.0 && b2_norm > 0.0 {
                // Blondel & Karplus (1996): ∂φ/∂x for the four atoms.
                let de = -t.k * t.periodicity * arg.sin();
                let ga = scale(n1, -b2_norm / n1_sq);
                let gd = scale(n2, b2_norm / n2_sq);
                let p = dot(b1, b2) / (b2_norm * b2_norm);
                let q = dot(b3, b2) / (b2_norm * b2_norm);
                let gb = sub(scale(gd, q), scale(ga, 1.0 + p));
                let gc = sub(scale(ga, p), scale(gd, 1.0 + q));
                add(&mut grad, a, scale(ga, de));
                add(&mut grad, b, scale(gb, de));
                add(&mut grad, c, scale(gc, de));
                add(&mut grad, d, scale(gd, de));
            }
        }

        let pair_term = |pair: &Pair, cutoff: &Cutoff, g: &mut Option<&mut [f64]>| -> f64 {
            let [i, j] = pair.atoms;
            let d = sub(pos(i), pos(j));
            let r2 = dot(d, d);
            let (mut energy, mut de_dr_over_r) = (0.0, 0.0);
            let r = r2.sqrt();
            let inv_r = 1.0 / r;
            match cutoff {
                Cutoff::None => {
                    energy += pair.coulomb * inv_r;
                    de_dr_over_r -= pair.coulomb * inv_r * inv_r * inv_r;
                }
                Cutoff::ReactionField { cutoff, k_rf, c_rf } => {
                    if r >= *cutoff {
                        return 0.0;
                    }
                    energy += pair.coulomb * (inv_r + k_rf * r2 - c_rf);
                    de_dr_over_r += pair.coulomb * (2.0 * k_rf - inv_r * inv_r * inv_r);
                }
            }
            if pair.four_epsilon != 0.0 {
                let s2 = pair.sigma * pair.sigma / r2;
                let s6 = s2 * s2 * s2;
                energy += pair.four_epsilon * s6 * (s6 - 1.0);
                // d/dr [4ε(s¹² − s⁶)] / r = 4ε(−12 s¹² + 6 s⁶)/r².
                de_dr_over_r += pair.four_epsilon * (6.0 * s6 - 12.0 * s6 * s6) / r2;
            }
            if g.is_some() {
                let f = scale(d, de_dr_over_r);
                add(g, i, f);
                add(g, j, scale(f, -1.0));
            }
            energy
        };
        for pair in &self.pairs {
            terms.nonbonded += pair_term(pair, &self.cutoff, &mut grad);
        }
        for pair in &self.exceptions {
            terms.nonbonded += pair_term(pair, &Cutoff::None, &mut grad);
        }
        terms
    }
}

/// The dihedral angle (radians, in (−π, π]) of four points, IUPAC sign convention: looking
/// along b → c, positive when d is rotated clockwise from a. This is OpenMM's torsion angle.
pub fn dihedral(a: [f64; 3], b: [f64; 3], c: [f64; 3], d: [f64; 3]) -> f64 {
    let (b1, b2, b3) = (sub(b, a), sub(c, b), sub(d, c));
    (norm(b2) * dot(b1, cross(b2, b3))).atan2(dot(cross(b1, b2), cross(b2, b3)))
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add3(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

impl Potential for OpenMmForceField {
    fn dim(&self) -> usize {
        3 * self.masses.len()
    }

    fn name(&self) -> &str {
        "openmm_system"
    }

    fn compute_energy(&self, x: &[f64]) -> f64 {
        self.evaluate(x, None).total()
    }

    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.evaluate(x, Some(grad)).total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four atoms with one of each bonded term and a nonbonded force with one exception.
    const SMALL: &str = r#"<?xml version="1.0" ?>
<System openmmVersion="8.6.1" type="System" version="1">
  <Particles>
    <Particle mass="12"/><Particle mass="12"/><Particle mass="12"/><Particle mass="1"/>
  </Particles>
  <Constraints/>
  <Forces>
    <Force type="HarmonicBondForce" usesPeriodic="0"><Bonds>
      <Bond d=".15" k="200000" p1="0" p2="1"/><Bond d=".14" k="250000" p1="1" p2="2"/>
    </Bonds></Force>
    <Force type="HarmonicAngleForce" usesPeriodic="0"><Angles>
      <Angle a="1.9" k="400" p1="0" p2="1" p3="2"/><Angle a="2.0" k="300" p1="1" p2="2" p3="3"/>
    </Angles></Force>
    <Force type="PeriodicTorsionForce" usesPeriodic="0"><Torsions>
      <Torsion k="2.5" p1="0" p2="1" p3="2" p4="3" periodicity="3" phase="0.3"/>
      <Torsion k="1.5" p1="0" p2="1" p3="2" p4="3" periodicity="1" phase="3.14159"/>
    </Torsions></Force>
    <Force type="NonbondedForce" method="METHOD" cutoff="0.9" rfDielectric="78.3" useSwitchingFunction="0">
      <GlobalParameters/><ParticleOffsets/><ExceptionOffsets/>
      <Particles>
        <Particle q=".3" sig=".3" eps=".4"/><Particle q="-.2" sig=".32" eps=".5"/>
        <Particle q=".1" sig=".28" eps=".3"/><Particle q="-.2" sig=".2" eps=".1"/>
      </Particles>
      <Exceptions>
        <Exception p1="0" p2="1" q="0" sig="1" eps="0"/>
        <Exception p1="1" p2="2" q="0" sig="1" eps="0"/>
        <Exception p1="0" p2="3" q="-.05" sig=".25" eps=".1"/>
      </Exceptions>
    </Force>
    <Force type="CMMotionRemover" frequency="1"/>
  </Forces>
</System>"#;

    fn small(method: &str) -> OpenMmForceField {
        OpenMmForceField::from_xml(&SMALL.replace("METHOD", method), Path::new("small.xml"))
            .unwrap()
    }

    fn configuration() -> Vec<f64> {
        vec![
            0.0, 0.0, 0.0, 0.15, 0.01, 0.0, 0.2, 0.14, 0.02, 0.33, 0.16, 0.11,
        ]
    }

    #[test]
    fn terms_match_hand_computation() {
        let ff = small("0");
        let x = configuration();
        let t = ff.energy_terms(&x).unwrap();
        let d01 = (0.15f64.powi(2) + 0.01f64.powi(2)).sqrt();
        let d12 = (0.05f64.powi(2) + 0.13f64.powi(2) + 0.02f64.powi(2)).sqrt();
        let bond = 0.5 * 200000.0 * (d01 - 0.15).powi(2) + 0.5 * 250000.0 * (d12 - 0.14).powi(2);
        assert!((t.bond - bond).abs() < 1e-9 * bond);
        // Nonbonded: pairs (0,2), (1,3), (2,3) ordinary; (0,3) an exception; (0,1), (1,2) excluded.
        let p = |i: usize| [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
        let r = |i: usize, j: usize| norm(sub(p(i), p(j)));
        let lj = |s: f64, e: f64, r: f64| 4.0 * e * ((s / r).powi(12) - (s / r).powi(6));
        let nb = ONE_4PI_EPS0
            * (0.3 * 0.1 / r(0, 2) + -0.2 * -0.2 / r(1, 3) + 0.1 * -0.2 / r(2, 3))
            + lj(0.29, (0.4f64 * 0.3).sqrt(), r(0, 2))
            + lj(0.26, (0.5f64 * 0.1).sqrt(), r(1, 3))
            + lj(0.24, (0.3f64 * 0.1).sqrt(), r(2, 3))
            + ONE_4PI_EPS0 * -0.05 / r(0, 3)
            + lj(0.25, 0.1, r(0, 3));
        assert!(
            (t.nonbonded - nb).abs() < 1e-9 * nb.abs(),
            "{} vs {nb}",
            t.nonbonded
        );
        assert!((ff.energy(&x).unwrap() - t.total()).abs() < 1e-12);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for method in ["0", "1"] {
            let ff = small(method);
            let x = configuration();
            let mut g = vec![0.0; 12];
            ff.energy_and_gradient(&x, &mut g).unwrap();
            for i in 0..12 {
                let h = 1e-6;
                let mut xp = x.clone();
                let mut xm = x.clone();
                xp[i] += h;
                xm[i] -= h;
                let fd = (ff.energy(&xp).unwrap() - ff.energy(&xm).unwrap()) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "method {method}, coordinate {i}: analytic {} vs numeric {fd}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn torsion_angle_follows_the_iupac_sign() {
        // A trans (180°) and a +60° gauche arrangement of four atoms.
        let ff = small("0");
        let phi = |x: &[f64]| {
            let p = |i: usize| [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
            let (b1, b2, b3) = (sub(p(1), p(0)), sub(p(2), p(1)), sub(p(3), p(2)));
            (norm(b2) * dot(b1, cross(b2, b3))).atan2(dot(cross(b1, b2), cross(b2, b3)))
        };
        let gauche = [
            0.0,
            1.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
            0.0,
            0.0,
            1.0,
            0.5,
            3f64.sqrt() / 2.0,
        ];
        // Looking down 1→2, atom 0 at 12 o'clock and atom 3 rotated clockwise by 60°: +60°.
        assert!(
            (phi(&gauche) - 60f64.to_radians()).abs() < 1e-12,
            "{}",
            phi(&gauche)
        );
        assert!(ff.energy(&gauche).is_ok());
    }

    #[test]
    fn unsupported_input_is_refused_by_name_and_line() {
        let err = |text: &str| {
            OpenMmForceField::from_xml(text, Path::new("sys.xml"))
                .unwrap_err()
                .to_string()
        };
        let pme = err(&SMALL.replace("METHOD", "4"));
        assert!(pme.contains("sys.xml:") && pme.contains("PME"), "{pme}");
        let cmap = SMALL.replace(
            r#"<Force type="CMMotionRemover" frequency="1"/>"#,
            r#"<Force type="CMAPTorsionForce"/>"#,
        );
        let e = err(&cmap.replace("METHOD", "0"));
        assert!(
            e.contains("CMAPTorsionForce") && e.contains("sys.xml:30"),
            "{e}"
        );
        let e = err(&SMALL
            .replace("METHOD", "0")
            .replace(r#"p4="3" periodicity="3""#, r#"periodicity="3""#));
        assert!(e.contains("sys.xml:15") && e.contains("`p4`"), "{e}");
        let e = err(&SMALL
            .replace("METHOD", "0")
            .replace(r#"p3="3""#, r#"p3="7""#));
        assert!(e.contains("p3") && e.contains("has 4"), "{e}");
        let e = err(&SMALL
            .replace("METHOD", "0")
            .replace(r#"k="2.5""#, r#"k="nan""#));
        assert!(e.contains("`k`"), "{e}");
        let e = err("<System><Particles>");
        assert!(e.contains("not well-formed XML"), "{e}");
        let e = err(&SMALL.replace("METHOD", "0").replace(
            "<Constraints/>",
            r#"<Constraints><Constraint d=".1" p1="0" p2="1"/></Constraints>"#,
        ));
        assert!(e.contains("constraints"), "{e}");
        let e = err(&SMALL.replace("METHOD", "0").replace(
            r#"<GlobalParameters/>"#,
            r#"<GlobalParameters><Parameter default="1" name="lambda"/></GlobalParameters>"#,
        ));
        assert!(e.contains("GlobalParameters"), "{e}");
    }
}
