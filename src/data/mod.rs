//! Datasets: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary batches and image folders; batching,
//! shuffling, normalisation and augmentation.
