//! Helpers shared by the integration tests.

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Precision};

/// A spline flow trained on data unrelated to any target, so that its Jacobian varies
/// strongly across space.
pub fn nonlinear_flow() -> Flow {
    tch::manual_seed(1);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 2, &[16], 6, 3.0).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let data: Vec<f64> = (0..2000)
        .flat_map(|i| {
            let t = i as f64 * 0.37;
            [2.0 * t.sin(), 0.5 * (1.3 * t).cos()]
        })
        .collect();
    let config = boltzgen::train::TrainConfig {
        steps: 200,
        learning_rate: 1e-2,
        ..Default::default()
    };
    boltzgen::train::train_flow(
        &mut flow,
        Some(&data),
        None,
        &config,
        &mut boltzgen::train::NoObserver,
    )
    .unwrap();
    flow
}
