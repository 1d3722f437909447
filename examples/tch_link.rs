//! Proves that the binary links libtorch and finds it at run time without LD_LIBRARY_PATH
//! (the crate's build script sets an rpath): prints whether CUDA is usable and multiplies two
//! small matrices on the CPU and, where present, on the GPU.
//!
//! scripts/env.sh && cargo run --release --example tch_link

use tch::{Device, Kind, Tensor};

fn main() {
    println!("tch: CUDA available: {}", tch::Cuda::is_available());
    println!("tch: CUDA devices: {}", tch::Cuda::device_count());
    let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0]).reshape([2, 2]);
    let b = Tensor::from_slice(&[5.0f64, 6.0, 7.0, 8.0]).reshape([2, 2]);
    let product = a.matmul(&b);
    let values: Vec<f64> = Vec::try_from(product.flatten(0, -1)).expect("a 2x2 f64 tensor");
    println!("tch: [[1,2],[3,4]] @ [[5,6],[7,8]] = {values:?} on the CPU");
    assert_eq!(values, vec![19.0, 22.0, 43.0, 50.0]);
    if tch::Cuda::is_available() {
        let on_gpu = a
            .to_device(Device::Cuda(0))
            .matmul(&b.to_device(Device::Cuda(0)));
        let back: Vec<f64> = Vec::try_from(
            on_gpu
                .to_kind(Kind::Double)
                .to_device(Device::Cpu)
                .flatten(0, -1),
        )
        .expect("a 2x2 f64 tensor");
        println!("tch: the same product on cuda:0 = {back:?}");
    }
}
