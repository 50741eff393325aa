userns_test::main!(warn);
