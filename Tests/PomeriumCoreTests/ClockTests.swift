import PomeriumCore
import Testing

@Suite struct ClockTests {
    @Test func manualClockAdvances() {
        let clock = ManualWallClock(now: 100)
        clock.advance(by: 2.5)
        #expect(clock.now() == 102.5)
        #expect(clock.unixSeconds() == 102)
    }

    @Test func systemClockIsAfter2020() {
        #expect(SystemWallClock().unixSeconds() > 1_577_836_800)
    }

    @Test func errorsCompareByCode() {
        let first = PomeriumError("config-invalid", "one reason")
        let second = PomeriumError("config-invalid", "another reason")
        let other = PomeriumError("config-missing", "one reason")
        #expect(first == second)
        #expect(first != other)
        #expect(first.description == "one reason")
    }
}
