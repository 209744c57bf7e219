// SPDX-License-Identifier: GPL-2.0
//! `kunit_suite!`: declares an in-module KUnit suite on 6.12, which has no
//! `#[kunit_tests]`. The suite, its case table and a pointer in the
//! `.kunit_test_suites` section are statics; KUnit runs them at insmod and
//! prints KTAP to the kernel log.

use super::bindings as b;

/// The running KUnit test, handed to each case.
pub(crate) struct Test(*mut b::kunit);

impl Test {
    /// Wraps KUnit's handle for the running case.
    pub(crate) fn new(t: *mut b::kunit) -> Self {
        Test(t)
    }

    /// Marks the case failed with `msg` (file and line of the check).
    pub(crate) fn fail(&mut self, file: &'static kernel::str::CStr, line: u32, msg: &'static kernel::str::CStr) {
        // SAFETY: `self.0` is the live test KUnit passed to this case; the
        // strings are static and NUL-terminated.
        unsafe { b::ferrofs_kunit_fail(self.0, file.as_char_ptr(), line as i32, msg.as_char_ptr()) };
    }
}

/// Fails the running case unless `$cond` holds.
macro_rules! kcheck {
    ($t:expr, $cond:expr) => {
        if !$cond {
            $t.fail(kernel::c_str!(file!()), line!(), kernel::c_str!(stringify!($cond)));
        }
    };
}
pub(crate) use kcheck;

/// Makes a fixed-size C name from a string at compile time.
pub(crate) const fn suite_name(s: &str) -> [kernel::ffi::c_char; 256] {
    let mut out = [0 as kernel::ffi::c_char; 256];
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && i < 255 {
        out[i] = bytes[i] as kernel::ffi::c_char;
        i += 1;
    }
    out
}

/// Declares a KUnit suite named `$name` whose cases are the functions
/// `fn(&mut Test)` listed, defined in the invoking module.
macro_rules! kunit_suite {
    ($suite:ident, $name:literal, [$($case:ident),+ $(,)?]) => {
        mod $suite {
            use $crate::vfs::bindings as b;
            use $crate::vfs::cell::{zeroed, KernelStatic};

            $(
                /// KUnit's entry point for the case of the same name.
                ///
                /// # Safety
                /// Called by KUnit's runner with `t` the live `struct kunit`
                /// of this case, valid until the case returns.
                unsafe extern "C" fn $case(t: *mut b::kunit) {
                    super::$case(&mut $crate::vfs::kunit::Test::new(t));
                }
            )+

            const N: usize = [$(stringify!($case)),+].len();

            static CASES: KernelStatic<[b::kunit_case; N + 1]> = KernelStatic::new([
                $(b::kunit_case {
                    run_case: Some($case),
                    name: kernel::c_str!(stringify!($case)).as_char_ptr(),
                    ..zeroed()
                },)+
                zeroed(),
            ]);

            static SUITE: KernelStatic<b::kunit_suite> = KernelStatic::new(b::kunit_suite {
                name: $crate::vfs::kunit::suite_name($name),
                test_cases: CASES.get().cast(),
                ..zeroed()
            });

            #[used]
            #[link_section = ".kunit_test_suites"]
            static SUITE_PTR: KernelStatic<*mut b::kunit_suite> = KernelStatic::new(SUITE.get());
        }
    };
}
pub(crate) use kunit_suite;
