// The runner holds every step to its row's contract (steps/contract.h): the
// timeout it hands the body, the dry-run behaviour, the events it may emit.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "run/context.h"
#include "core/error.h"
#include "config/keys.h"
#include "steps/events.h"
#include "steps/failover.h"
#include "steps/follow.h"
#include "steps/ops.h"
#include "steps/runner.h"
#include "steps/single.h"
#include "steps/switchover.h"

using namespace pgfo;
using nlohmann::json;

namespace {

struct Seen {
    std::vector<std::string> names;
};
void on_event(const pgfo_event_t *ev, void *user) {
    static_cast<Seen *>(user)->names.push_back(reinterpret_cast<const Event *>(ev)->name);
}

const StepSpec kSyncStep = {"sync_standbys", "change it", StepTimeout::Shutdown, kDryRunStops, {ev::kSyncChanged}};
const StepSpec kSkipStep = {"verify", "look at it", StepTimeout::None, dry_run_skips("nothing promoted"), {}};
const StepSpec kRunsStep = {"inspect", "look", StepTimeout::Connect, kDryRunRuns, {}};

class RunnerTest : public ::testing::Test {
protected:
    void SetUp() override {
        ctx.cfg.shutdown_timeout = 12.5;
        ctx.cfg.command_timeout = 7;
        ctx.strict_event_contracts = true;
        ctx.set_event_callback(on_event, &seen);
    }
    Context ctx;
    Seen seen;
};

TEST_F(RunnerTest, TheBodyGetsItsRowsTimeoutOrTheCallersOverride) {
    Runner run(ctx, "failover", json::object());
    double got = -1, command = -1;
    run.step(kSyncStep, [&](const StepCall &s) {
        got = s.timeout();
        command = s.command();
        return StepResult::done("ok");
    });
    EXPECT_EQ(got, 12.5);
    EXPECT_EQ(command, 7);
    run.step(kSyncStep, [&](const StepCall &s) {
        got = s.timeout();
        return StepResult::done("ok");
    }, 3);
    EXPECT_EQ(got, 3);
    run.step(kSkipStep, [&](const StepCall &s) {
        got = s.timeout(); // no key of its own: [timeouts] command
        return StepResult::done("ok");
    });
    EXPECT_EQ(got, 7);
}

TEST_F(RunnerTest, AListedEventPassesAnUnlistedOneIsABug) {
    Runner run(ctx, "failover", json::object());
    run.step(kSyncStep, [&](const StepCall &) {
        ctx.emit(ev::kSyncChanged, "sync_standbys", "info", json::object());
        return StepResult::done("ok");
    });
    EXPECT_EQ(seen.names,
              (std::vector<std::string>{"failover.started", "step.started", "sync.changed", "step.succeeded"}));
    seen.names.clear();
    try {
        run.step(kSyncStep, [&](const StepCall &) {
            ctx.emit(ev::kSlotsReady, "sync_standbys", "info", json::object());
            return StepResult::done("not reached");
        });
        ADD_FAILURE() << "an event the row does not list was emitted";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_INTERNAL);
        EXPECT_NE(std::string(e.what()).find("step sync_standbys emitted event slots.ready"), std::string::npos)
            << e.what();
    }
    // never sent; the step failed
    EXPECT_EQ(seen.names, (std::vector<std::string>{"step.started", "step.failed"}));
    seen.names.clear();
    // outside any step (after the steps of a run) a domain event is the run's
    ctx.emit(ev::kNeedsRewind, "", "warning", json::object());
    EXPECT_EQ(seen.names, (std::vector<std::string>{"failover.needs_rewind"}));
}

TEST_F(RunnerTest, NotStrictTheEventIsSentAndTheBugLogged) {
    ctx.strict_event_contracts = false;
    std::vector<std::string> logs;
    ctx.set_log_callback([](pgfo_log_level_t, const char *line, void *u) {
        static_cast<std::vector<std::string> *>(u)->push_back(line);
    }, &logs);
    Runner run(ctx, "failover", json::object());
    run.step(kRunsStep, [&](const StepCall &) {
        ctx.emit(ev::kSplitBrain, "inspect", "critical", json::object());
        return StepResult::done("ok");
    });
    EXPECT_EQ(seen.names,
              (std::vector<std::string>{"failover.started", "step.started", "failover.split_brain", "step.succeeded"}));
    bool logged = false;
    for (const auto &l : logs) logged = logged || l.find("BUG: step inspect emitted event failover.split_brain") !=
                                                      std::string::npos;
    EXPECT_TRUE(logged);
}

TEST_F(RunnerTest, ARunNestedInAStepIsHeldToItsOwnSteps) {
    Runner outer(ctx, "switchover", json::object());
    outer.step(kRunsStep, [&](const StepCall &) {
        Runner inner(ctx, "follow_primary", json::object());
        inner.step(kSyncStep, [&](const StepCall &) {
            ctx.emit(ev::kSyncChanged, "sync_standbys", "info", json::object());
            return StepResult::done("ok");
        });
        // the inner run's own events after its steps: not the outer step's
        ctx.emit(ev::kSyncChanged, "follow_primary", "warning", json::object());
        inner.finish(PGFO_OK, "done", json::object());
        return StepResult::done("ok");
    });
    // and back in the outer step, its own list applies again
    EXPECT_THROW(outer.step(kRunsStep, [&](const StepCall &) {
        ctx.emit(ev::kSyncChanged, "inspect", "info", json::object());
        return StepResult::done("no");
    }), Error);
}

TEST_F(RunnerTest, DryRunSkipsNeverCallsTheBody) {
    ctx.dry_run = true;
    Runner run(ctx, "failover", json::object());
    bool called = false;
    StepResult r = run.step(kSkipStep, [&](const StepCall &) {
        called = true;
        return StepResult::done("changed something");
    });
    EXPECT_FALSE(called);
    EXPECT_TRUE(r.skipped);
    EXPECT_EQ(r.summary, "dry run: nothing promoted");
    const StepSpec bare = {"wait_streaming", "wait", StepTimeout::Follow, dry_run_skips(""), {}};
    EXPECT_EQ(run.step(bare, [&](const StepCall &) { return StepResult::done("x"); }).summary, "dry run");
    EXPECT_EQ(run.report()["steps"][0]["outcome"], "skipped");
}

TEST_F(RunnerTest, DryRunStopsAtBeforeChangesARealRunGoesOn) {
    int changes = 0;
    auto body = [&](const StepCall &s) {
        s.before_changes("would change x to y", {{"before", "x"}});
        ++changes;
        return StepResult::done("changed");
    };
    {
        ctx.dry_run = true;
        Runner run(ctx, "failover", json::object());
        StepResult r = run.step(kSyncStep, body);
        EXPECT_TRUE(r.skipped);
        EXPECT_EQ(r.summary, "dry run: would change x to y");
        EXPECT_EQ(r.details["before"], "x");
        EXPECT_EQ(changes, 0);
    }
    {
        ctx.dry_run = false;
        Runner run(ctx, "failover", json::object());
        StepResult r = run.step(kSyncStep, body);
        EXPECT_FALSE(r.skipped);
        EXPECT_EQ(changes, 1);
    }
}

TEST_F(RunnerTest, BeforeChangesInARowThatSaysRunsIsABug) {
    Runner run(ctx, "failover", json::object());
    try {
        run.step(kRunsStep, [&](const StepCall &s) {
            s.before_changes("would change");
            return StepResult::done("changed");
        });
        ADD_FAILURE() << "no error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_INTERNAL);
        EXPECT_NE(std::string(e.what()).find("its row says dry run: runs"), std::string::npos) << e.what();
    }
}

// Every table's rows: events from the catalogue only, a Skips row has its
// summary, timeouts are keys the configuration has.
TEST(StepTables, RowsDeclareCatalogueEventsAndKnownTimeouts) {
    std::set<std::string> catalogue(ev::kAll.begin(), ev::kAll.end());
    std::set<std::string> used;
    std::vector<std::vector<StepInfo>> tables = {primary_failover_steps(), standby_failure_steps(),
                                                 follow_primary_steps(), switchover_steps(), single_steps()};
    for (const auto &t : tables) {
        ASSERT_FALSE(t.empty());
        for (const auto &s : t) {
            for (const auto &e : s.events) {
                EXPECT_TRUE(catalogue.count(e)) << s.name << ": " << e;
                used.insert(e);
            }
            if (s.dry_run.mode == DryRunMode::Skips) {
                EXPECT_NE(s.dry_run.skip_text, nullptr) << s.name;
            }
            if (s.timeout != StepTimeout::None) {
                EXPECT_FALSE(timeout_key(s.timeout).empty()) << s.name;
            }
        }
    }
    // every domain event but the run's own comes from some step
    for (const auto &e : catalogue) {
        if (e != ev::kNeedsRewind) {
            EXPECT_TRUE(used.count(e)) << e;
        }
    }
    // the failover's wait for the flush may fence; its promotion is bounded by [timeouts] promote
    for (const auto &s : primary_failover_steps()) {
        if (s.name == "wait_flush") {
            EXPECT_EQ(s.events, std::vector<std::string>(ev::kFencing.begin(), ev::kFencing.end()));
        }
        if (s.name == "promote") {
            EXPECT_EQ(timeout_key(s.timeout), "[timeouts] promote");
        }
        if (s.name == "one_primary") {
            EXPECT_EQ(s.dry_run.mode, DryRunMode::Skips);
        }
    }
}

} // namespace

// A row's timeout key is a key of the configuration table ("[timeouts]
// shutdown" is section timeouts, key shutdown), except the hooks' sums.
TEST(StepTables, TimeoutKeysAreConfigurationKeys) {
    for (StepTimeout t : {StepTimeout::Connect, StepTimeout::Command, StepTimeout::Lock, StepTimeout::Shutdown,
                          StepTimeout::Catchup, StepTimeout::Promote, StepTimeout::Unreachable, StepTimeout::Follow,
                          StepTimeout::Rewind}) {
        const std::string k = timeout_key(t);
        ASSERT_EQ(k.front(), '[') << k;
        const size_t close = k.find("] ");
        ASSERT_NE(close, std::string::npos) << k;
        Section sec;
        ASSERT_TRUE(section_of(k.substr(1, close - 1), sec)) << k;
        const KeySpec *spec = find_key(sec, k.substr(close + 2));
        ASSERT_NE(spec, nullptr) << k << " is not in the configuration's key table";
        EXPECT_EQ(spec->type, KeyType::Seconds) << k;
    }
}

// One failed read never decides, even when it alone outlasted the window
// (a read that timed out on a lossy link): the read is tried again.
TEST(RetryReads, OneSlowFailureIsRetriedEvenPastTheWindow) {
    Context ctx;
    ctx.cfg.poll_interval = 0.001;
    int calls = 0;
    int v = retry_reads(ctx, "reading pg_control", 0.01, [&] {
        if (++calls == 1) {
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            throw Error(PGFO_ERR_EXEC, "timed out");
        }
        return 7;
    });
    EXPECT_EQ(v, 7);
    EXPECT_EQ(calls, 2);
}

// Failures lasting the window, two of them at least, are a fact.
TEST(RetryReads, FailuresLastingTheWindowAreThrown) {
    Context ctx;
    ctx.cfg.poll_interval = 0.001;
    int calls = 0;
    EXPECT_THROW(retry_reads(ctx, "reading pg_control", 0.05,
                             [&]() -> int {
                                 ++calls;
                                 throw Error(PGFO_ERR_EXEC, "unreachable");
                             }),
                 Error);
    EXPECT_GE(calls, 2);
    int other = 0;
    EXPECT_THROW(retry_reads(ctx, "reading pg_control", 10,
                             [&]() -> int {
                                 ++other;
                                 throw Error(PGFO_ERR_IDENTITY, "another cluster");
                             }),
                 Error);
    EXPECT_EQ(other, 1); // not transient: never retried
}
