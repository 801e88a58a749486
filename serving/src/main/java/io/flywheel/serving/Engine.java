package io.flywheel.serving;

import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.model.Batcher;
import io.flywheel.model.Decoder;
import io.flywheel.model.Generator;
import io.flywheel.model.Gpt;
import io.flywheel.model.GptConfig;
import io.flywheel.model.Inference;
import io.flywheel.model.KvCacheDtype;
import io.flywheel.model.Quantization;
import io.flywheel.model.Sampling;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import org.jboss.logging.Logger;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One loaded checkpoint, ready to generate: its weights in the engine's layout and a {@link Batcher}
 * that runs every generation on it in one batched decode step per token. Requests lease it for
 * their whole duration; once a newer engine replaces it, it is retired: no new lease is given, and
 * its batcher, cache and weights are freed when the last request that started on it ends.
 */
public final class Engine {

    private static final Logger LOG = Logger.getLogger(Engine.class);

    /** The chat template's end of turn, and the end of a document: either ends a chat answer. */
    static final List<String> CHAT_STOPS = List.of("<|endoftext|>", "<|end|>");

    private final long version;
    private final String sha256;
    private final GptConfig config;
    private final Inference inference;
    private final Batcher batcher;
    private final Tokenizer tokenizer;
    private final long weightBytes;
    private int leases;
    private boolean retired;
    private boolean freed;

    /**
     * How every engine is built: its weights held as {@code quantization} says, its key/value cache in
     * {@code kvCacheDtype}, each decode step's weight multiplies split among {@code threads}, room for
     * {@code slots} generations at once.
     */
    record Settings(Quantization quantization, KvCacheDtype kvCacheDtype, int threads, int slots) {}

    /**
     * Copies {@code weights} into the engine's layout as {@code settings} say (the arrays are freed
     * here) and starts its batcher; {@code onStep} hears how many ran in each decode step.
     */
    Engine(long version, String sha256, GptConfig config, Map<String, INDArray> weights, Settings settings,
           Tokenizer tokenizer, IntConsumer onStep) {
        this.version = version;
        this.sha256 = sha256;
        this.config = config;
        Decoder decoder;
        try {
            decoder = Decoder.copyOf(config, weights, settings.quantization());
        } finally {
            weights.values().forEach(INDArray::close);
        }
        decoder.useThreads(settings.threads());
        this.weightBytes = decoder.weightBytes();
        this.inference = new Inference(decoder, settings.kvCacheDtype());
        this.batcher = new Batcher(decoder, settings.slots(), settings.kvCacheDtype(), "decode-v" + version, onStep);
        this.tokenizer = tokenizer;
    }

    /** Bytes of weights the engine holds. */
    long weightBytes() {
        return weightBytes;
    }

    public long version() {
        return version;
    }

    public String sha256() {
        return sha256;
    }

    public GptConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * The reward head's score of an answer to a prompt, on the sequence the trainer's pairs use:
     * the prompt, the answer's text re-encoded, and {@code <|end|>} closing a chat turn.
     */
    public double reward(int[] prompt, String answer, boolean chat) {
        int[] ids = tokenizer.encode(answer);
        if (chat && tokenizer.specialTokens().containsKey("<|end|>")) {
            ids = Arrays.copyOf(ids, ids.length + 1);
            ids[ids.length - 1] = tokenizer.specialId("<|end|>");
        }
        if (ids.length == 0) {
            ids = new int[] {tokenizer.specialId("<|endoftext|>")};
        }
        return inference.reward(Gpt.Sequence.fit(prompt, ids, config().contextLength()).tokens());
    }

    /**
     * Starts a completion of {@code prompt} in the batch: it stops at {@code <|endoftext|>}
     * (completions) or also at {@code <|end|>} (chat). {@code onText} and {@code onToken} run on
     * the batcher's thread: they must only hand over, never block.
     */
    public Batcher.Job generate(int[] prompt, Sampling sampling, boolean chat, Consumer<String> onText, IntConsumer onToken) {
        Generator generator = chat ? new Generator(inference, tokenizer, CHAT_STOPS) : new Generator(inference, tokenizer);
        return batcher.submit(prompt, generator.start(sampling, onText, onToken));
    }

    /** Takes a lease, unless the engine has been retired. */
    synchronized boolean lease() {
        if (retired) {
            return false;
        }
        leases++;
        return true;
    }

    synchronized void release() {
        leases--;
        if (retired && leases == 0) {
            free();
        }
    }

    /** No new leases; the weights go when the last lease does. */
    synchronized void retire() {
        retired = true;
        if (leases == 0) {
            free();
        }
    }

    private void free() {
        if (!freed) {
            freed = true;
            batcher.close();
            inference.close();
            LOG.infof("released model version %d", version);
        }
    }
}
