//! Multipart bodies through the three upload endpoints of the real router;
//! see `facehub_fuzz::upload` for the input layout and the properties.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        facehub_fuzz::upload::Harness::get();
    },
    |data: &[u8]| facehub_fuzz::upload::check(data)
);
