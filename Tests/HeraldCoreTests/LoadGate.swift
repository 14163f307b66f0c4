// The process-wide test gate's traits, `.heavy` and `.timingSensitive`, for every file of this
// target (Tests/TestSupport/LoadGate.swift says what they do).
@_exported import TestSupport
