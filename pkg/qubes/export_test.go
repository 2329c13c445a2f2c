package qubes

// FakeTool lets the external test package's TestMain (sim_test.go) run this
// test binary as a fake Qubes tool (the helper-process pattern).
var FakeTool = fakeTool
