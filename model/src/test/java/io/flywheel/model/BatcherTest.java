package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Continuous batching against the same completions generated one at a time: more completions
 * than slots, joining and leaving at different steps, each with its own sampling, stop strings and
 * streamed text; one cancelled or failing completion ends alone.
 */
class BatcherTest {

    private static Tokenizer tokenizer;
    private static Gpt gpt;
    private static Generator generator;

    @BeforeAll
    static void model() throws Exception {
        tokenizer = TokenizerFiles.load("cl100k_base");
        gpt = Gpt.initialize(new GptConfig(tokenizer.vocabSize(), 48, 2, 2, 32, 4, 0.0, true), 4);
        generator = new Generator(new Inference(gpt), tokenizer);
    }

    private record Case(int[] prompt, Sampling sampling) {}

    @Test
    void batchedCompletionsEqualTheSameCompletionsGeneratedAlone() throws Exception {
        List<Case> cases = new ArrayList<>();
        String[] prompts = {"Once upon a time", "To be", "The quick brown fox jumps over the lazy", "A", "It was the best of times, it was"};
        for (int i = 0; i < 9; i++) {
            int[] prompt = tokenizer.encode(prompts[i % prompts.length]);
            Sampling sampling = i % 3 == 0 ? Sampling.greedy(5 + 3 * i)
                    : new Sampling(0.9, i % 2 == 0 ? 0.8 : 1, i % 4, 100L + i, 4 + 5 * i, List.of());
            cases.add(new Case(prompt, sampling));
        }
        // One more that a stop string ends: the middle of its own greedy text.
        int[] prompt = tokenizer.encode("Once upon a time");
        String text = generator.generate(prompt, Sampling.greedy(20), null).text();
        cases.add(new Case(prompt, new Sampling(0, 1, 0, null, 20, List.of(text.substring(text.length() / 2, text.length() / 2 + 2)))));
        // And one that the context ends: 48 positions.
        cases.add(new Case(prompt, Sampling.greedy(100)));

        try (Batcher batcher = new Batcher(Decoder.of(gpt), 3, "test-batcher")) {
            List<Batcher.Job> jobs = new ArrayList<>();
            List<StringBuilder> streamed = new ArrayList<>();
            // All are queued before the first step (its thread admits under the batcher's lock), so
            // which completions share each step is the same in every run. That matters: a step's
            // logits differ from a lone step's by rounding (sgemm for many rows, sgemv for one;
            // DecoderTest bounds it), and where a sampled token sits near a tie, a run that had
            // let the first completion take a few steps alone drew another token.
            synchronized (batcher) {
                for (Case c : cases) {
                    StringBuilder pieces = new StringBuilder();
                    streamed.add(pieces);
                    jobs.add(batcher.submit(c.prompt(), generator.start(c.sampling(), pieces::append, null)));
                }
            }
            for (int i = 0; i < cases.size(); i++) {
                Generator.Completion alone = generator.generate(cases.get(i).prompt(), cases.get(i).sampling(), null);
                Generator.Completion batched = jobs.get(i).result().get(30, TimeUnit.SECONDS);
                assertArrayEquals(alone.tokens(), batched.tokens(), "case " + i);
                assertEquals(alone.text(), batched.text(), "case " + i);
                assertEquals(alone.finish(), batched.finish(), "case " + i);
                assertEquals(batched.text(), streamed.get(i).toString(), "case " + i + "'s streamed text");
            }
            assertEquals(Generator.Finish.STOP, jobs.get(cases.size() - 2).result().get().finish());
            assertEquals(48 - prompt.length + 1, jobs.get(cases.size() - 1).result().get().tokens().length);
            assertEquals(0, batcher.active());
        }
    }

    @Test
    void aCancelledOrFailingCompletionEndsAloneAndFreesItsSlot() throws Exception {
        int[] prompt = tokenizer.encode("Once upon a time");
        try (Batcher batcher = new Batcher(Decoder.of(gpt), 2, "test-batcher")) {
            AtomicReference<Batcher.Job> cancelled = new AtomicReference<>();
            int[] drawn = new int[1];
            Batcher.Job gone = batcher.submit(prompt, generator.start(Sampling.greedy(40), null, token -> {
                if (++drawn[0] == 3) {
                    cancelled.get().cancel();      // its client leaves after three tokens
                }
            }));
            cancelled.set(gone);
            RuntimeException boom = new IllegalStateException("the stream's writer failed");
            Batcher.Job failing = batcher.submit(prompt, generator.start(Sampling.greedy(40), piece -> {
                throw boom;
            }, null));
            // Both slots are taken: these two wait and must get the freed slots.
            Batcher.Job third = batcher.submit(prompt, generator.start(Sampling.greedy(10), null, null));
            Batcher.Job fourth = batcher.submit(tokenizer.encode("To be"), generator.start(Sampling.greedy(10), null, null));

            // A future completed with CancellationException throws it from get() as it is.
            assertThrows(CancellationException.class, () -> gone.result().get(30, TimeUnit.SECONDS));
            assertEquals(3, drawn[0], "no token is drawn after the cancel");
            ExecutionException e = assertThrows(ExecutionException.class, () -> failing.result().get(30, TimeUnit.SECONDS));
            assertSame(boom, e.getCause());
            assertArrayEquals(generator.generate(prompt, Sampling.greedy(10), null).tokens(), third.result().get(30, TimeUnit.SECONDS).tokens());
            assertArrayEquals(generator.generate(tokenizer.encode("To be"), Sampling.greedy(10), null).tokens(),
                    fourth.result().get(30, TimeUnit.SECONDS).tokens());
            assertEquals(0, batcher.active());
        }
    }

    @Test
    void aCompletionWaitingBehindOneCancelledMidStepGetsItsSlot() throws Exception {
        // The shape of a hang seen in serving: every slot held a completion whose client had gone,
        // admission had let a new one in, and the step that dropped the cancelled ones left the
        // newcomer waiting with nothing to run, so the batcher's thread slept on it.
        int[] prompt = tokenizer.encode("Once upon a time");
        try (Batcher batcher = new Batcher(Decoder.of(gpt), 1, "test-batcher")) {
            java.util.concurrent.CountDownLatch drawing = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
            Batcher.Job gone = batcher.submit(prompt, generator.start(Sampling.greedy(40), null, holdEachToken(drawing, release)));
            drawing.await(30, TimeUnit.SECONDS);
            // Mid-step: the running one's client leaves and a new one comes.
            gone.cancel();
            Batcher.Job next = batcher.submit(prompt, generator.start(Sampling.greedy(5), null, null));
            Batcher.Job alsoGone = batcher.submit(prompt, generator.start(Sampling.greedy(5), null, null));
            alsoGone.cancel();                     // one that leaves before it ever ran
            release.countDown();

            assertThrows(CancellationException.class, () -> gone.result().get(30, TimeUnit.SECONDS));
            assertArrayEquals(generator.generate(prompt, Sampling.greedy(5), null).tokens(),
                    next.result().get(30, TimeUnit.SECONDS).tokens());
            assertThrows(CancellationException.class, () -> alsoGone.result().get(30, TimeUnit.SECONDS));
            assertEquals(0, batcher.active());
        }
    }

    @Test
    void closingFailsWhatIsLeftAndRefusesMore() throws Exception {
        int[] prompt = tokenizer.encode("Once upon a time");
        Batcher batcher = new Batcher(Decoder.of(gpt), 1, "test-batcher");
        java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        Batcher.Job running = batcher.submit(prompt, generator.start(Sampling.greedy(40), null, holdEachToken(started, release)));
        Batcher.Job waiting = batcher.submit(prompt, generator.start(Sampling.greedy(5), null, null));
        started.await(30, TimeUnit.SECONDS);
        Thread closer = new Thread(batcher::close);
        closer.start();
        // Once the closer waits for the batcher's thread, close() has marked it closed.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (closer.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        release.countDown();
        closer.join(30_000);
        assertThrows(CancellationException.class, () -> waiting.result().get(30, TimeUnit.SECONDS));
        assertThrows(CancellationException.class, () -> running.result().get(30, TimeUnit.SECONDS));
        assertThrows(IllegalStateException.class, () -> batcher.submit(prompt, generator.start(Sampling.greedy(5), null, null)));
    }

    /** A token callback that says a token was drawn, then holds the batcher's thread until {@code release} opens. */
    private static java.util.function.IntConsumer holdEachToken(java.util.concurrent.CountDownLatch drawn,
                                                                java.util.concurrent.CountDownLatch release) {
        return token -> {
            drawn.countDown();
            try {
                release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
    }
}
