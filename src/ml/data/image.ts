/**
 * The geometry of an MNIST image as the models, metrics and report helpers see it: 28 × 28
 * pixels, stored as one row of 784 values per image ([n, IMAGE_PIXELS], row-major).
 */
export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
