package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** {@code flywheel bench train} and {@code decode} through the real CLI: one JSON line whose numbers agree with each other. */
class BenchCliTest {

    @Test
    void trainPrintsOneConsistentJsonLine() throws Exception {
        // OMP_NUM_THREADS as ./flywheel sets it: --threads must win over it.
        Cli.Result r = Cli.run(java.util.Map.of("OMP_NUM_THREADS", "1"), new byte[0], "bench", "train", "--layers", "1", "--heads", "2",
                "--width", "16", "--vocab", "64", "--context", "16", "--batch", "2", "--steps", "3", "--warmup", "1", "--threads", "2");
        assertEquals(0, r.exit(), r.stderr());
        String[] lines = r.out().strip().split("\n");
        assertEquals(1, lines.length, r.out());
        JsonNode j = new ObjectMapper().readTree(lines[0]);
        assertEquals(16, j.get("width").asInt());
        assertEquals(2, j.get("threads").asInt(), "the threads OpenBLAS ran with");
        double tokensPerSecond = j.get("tokens_per_s").asDouble();
        double stepMs = j.get("step_ms").asDouble();
        assertTrue(tokensPerSecond > 0 && stepMs > 0, lines[0]);
        assertEquals(2 * 16 / (stepMs / 1e3), tokensPerSecond, 1e-6 * tokensPerSecond, "tokens/s is one step's tokens over its time");
        assertEquals(j.get("gflops").asDouble() / j.get("peak_gflops").asDouble(), j.get("mfu").asDouble(), 1e-9);
        assertTrue(j.get("peak_gflops").asDouble() > 1, lines[0]);
    }

    @Test
    void aShapeThatCannotBeBuiltIsAUsageError() throws Exception {
        Cli.Result r = Cli.run("bench", "train", "--width", "10", "--heads", "3", "--steps", "1");
        assertEquals(2, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("width 10 must be a multiple of heads 3"), r.stderr());
        Cli.Result zero = Cli.run("bench", "train", "--steps", "0");
        assertEquals(2, zero.exit(), zero.stderr());
        assertTrue(zero.stderr().contains("--steps"), zero.stderr());
    }

    @Test
    void decodePrintsOneConsistentJsonLine() throws Exception {
        // Width, MLP and vocabulary multiples of 64, so that no panel of the engine's matrices is padded.
        Cli.Result r = Cli.run("bench", "decode", "--layers", "1", "--heads", "2", "--width", "64", "--vocab", "64",
                "--context", "16", "--clients", "3", "--prompt", "4", "--tokens", "6", "--warmup", "0", "--rounds", "1", "--threads", "1");
        assertEquals(0, r.exit(), r.stderr());
        String[] lines = r.out().strip().split("\n");
        assertEquals(1, lines.length, r.out());
        JsonNode j = new ObjectMapper().readTree(lines[0]);
        assertEquals(3, j.get("clients").asInt());
        double tokensPerSecond = j.get("tokens_per_s").asDouble();
        double stepsPerSecond = j.get("steps_per_s").asDouble();
        assertTrue(tokensPerSecond > 0, lines[0]);
        assertEquals(3 * stepsPerSecond, tokensPerSecond, 1e-6 * tokensPerSecond, "every client gets a token per step");
        double bound = j.get("bandwidth_gb_s").asDouble() * 1e9 / (j.get("weight_mb").asDouble() * 1e6);
        assertEquals(bound, j.get("bound_tokens_per_s").asDouble(), 1e-6 * bound, "the bound is bandwidth over weight bytes");
        assertEquals(stepsPerSecond / bound, j.get("of_bound").asDouble(), 1e-6);
        // Every parameter in float32, the reward head's width + 1 beside them, and the tied head's own panels (vocab x width).
        assertEquals(4.0 * (j.get("parameters").asLong() + 64 + 1 + 64 * 64) / 1e6, j.get("weight_mb").asDouble(), 1e-9);
        double p50 = j.get("p50_ttft_ms").asDouble();
        assertTrue(p50 > 0 && j.get("p99_ttft_ms").asDouble() >= p50, lines[0]);
        assertEquals("float32", j.get("kv_cache_dtype").asText());
    }

    @Test
    void aBfloat16CacheDecodesTheSameShape() throws Exception {
        Cli.Result r = Cli.run("bench", "decode", "--layers", "1", "--heads", "2", "--width", "64", "--vocab", "64",
                "--context", "40", "--clients", "2", "--prompt", "4", "--tokens", "36", "--warmup", "0", "--rounds", "1", "--threads", "1",
                "--kv-cache-dtype", "bf16");
        assertEquals(0, r.exit(), r.stderr());
        JsonNode j = new ObjectMapper().readTree(r.out().strip());
        assertEquals("bfloat16", j.get("kv_cache_dtype").asText());
        assertTrue(j.get("tokens_per_s").asDouble() > 0, r.out());
    }

    @Test
    void int8DecodeHoldsAboutAQuarterOfTheBytes() throws Exception {
        String[] shape = {"--layers", "2", "--heads", "2", "--width", "64", "--vocab", "64", "--context", "16", "--prompt", "4",
            "--tokens", "4", "--warmup", "0", "--rounds", "1", "--threads", "1"};
        JsonNode full = decode(shape, "none");
        JsonNode int8 = decode(shape, "int8");
        assertEquals("int8", int8.get("quantize").asText());
        assertEquals("none", full.get("quantize").asText());
        // Embeddings, norms and biases stay float32; the matrices are 2 layers x 12 x 64^2 weights. A float32
        // engine holds the tied head as panels of its own (64 x 64 floats); int8 multiplies by the embedding.
        double matrices = 2 * 12 * 64 * 64;
        double tiedHead = 4 * 64 * 64;
        assertEquals(full.get("weight_mb").asDouble() - (tiedHead + 3 * matrices) / 1e6, int8.get("weight_mb").asDouble(),
                0.08 * matrices / 1e6);
    }

    private static JsonNode decode(String[] shape, String quantize) throws Exception {
        String[] args = new String[shape.length + 4];
        args[0] = "bench";
        args[1] = "decode";
        System.arraycopy(shape, 0, args, 2, shape.length);
        args[shape.length + 2] = "--quantize";
        args[shape.length + 3] = quantize;
        Cli.Result r = Cli.run(args);
        assertEquals(0, r.exit(), r.stderr());
        return new ObjectMapper().readTree(r.out().strip());
    }

    @Test
    void aDecodeThatDoesNotFitItsContextOrAnUnknownQuantizationOrCacheDtypeOrANegativeWarmupIsAUsageError() throws Exception {
        Cli.Result int4 = Cli.run("bench", "decode", "--quantize", "int4");
        assertEquals(2, int4.exit(), int4.stderr());
        assertTrue(int4.stderr().contains("unknown quantization 'int4'"), int4.stderr());
        Cli.Result fp8 = Cli.run("bench", "decode", "--kv-cache-dtype", "fp8");
        assertEquals(2, fp8.exit(), fp8.stderr());
        assertTrue(fp8.stderr().contains("unknown key/value cache dtype 'fp8'"), fp8.stderr());
        Cli.Result r = Cli.run("bench", "decode", "--context", "16", "--prompt", "10", "--tokens", "8");
        assertEquals(2, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("do not fit --context 16"), r.stderr());
        Cli.Result warmup = Cli.run("bench", "decode", "--warmup", "-1");
        assertEquals(2, warmup.exit(), warmup.stderr());
        assertTrue(warmup.stderr().contains("--warmup at least 0"), warmup.stderr());
    }
}
