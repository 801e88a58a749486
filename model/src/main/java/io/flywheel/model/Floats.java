package io.flywheel.model;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One contiguous block of float32 memory outside the Java heap, as llm.c's {@code float*}: the
 * engine's parameters, gradients and activations each live in one, and tensors are offsets into
 * it. ND4J allocates it (so its memory caps and accounting apply), OpenBLAS reads it through a
 * pointer, the fused loops through {@link #get}/{@link #set}, and checkpoints and the optimizer see
 * named {@link INDArray} views of it ({@link #view}) that share the memory.
 *
 * <p>{@link #close} frees the memory at once (views made of it must be gone by then); otherwise
 * the GC frees it. Offsets are ints: one block holds at most 2^31 - 1 floats (8 GiB).
 */
public final class Floats implements AutoCloseable {

    private final INDArray owner;
    private final FloatBuffer data;
    private final FloatPointer base;
    private final int size;

    private Floats(INDArray owner) {
        this.owner = owner;
        this.size = Math.toIntExact(owner.length());
        this.data = owner.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
        this.base = new FloatPointer(owner.data().addressPointer());
        if (data.capacity() < size) {
            throw new IllegalStateException("ND4J's buffer view holds " + data.capacity() + " floats, expected " + size);
        }
    }

    /** {@code size} floats, all zero. */
    public static Floats zeros(long size) {
        return new Floats(Nd4j.zeros(DataType.FLOAT, Math.max(1, size)));
    }

    public int size() {
        return size;
    }

    public float get(int i) {
        return data.get(i);
    }

    public void set(int i, float v) {
        data.put(i, v);
    }

    public void add(int i, float v) {
        data.put(i, data.get(i) + v);
    }

    public void fill(int from, int to, float v) {
        float[] chunk = new float[Math.min(1024, Math.max(0, to - from))];
        java.util.Arrays.fill(chunk, v);
        for (int i = from; i < to; i += chunk.length) {
            data.put(i, chunk, 0, Math.min(chunk.length, to - i));
        }
    }

    /** Frees the memory now, rather than when the GC finds it; no use after this. */
    public void close() {
        if (owner.closeable()) {
            owner.close();
        }
    }

    public void zero() {
        fill(0, size, 0f);     // a Java loop, not an ND4J op: the engine's workers call it at once
    }

    /** Copies {@code n} floats from {@code src} at {@code from} to here at {@code to}. */
    public void copy(Floats src, int from, int to, int n) {
        FloatBuffer s = src.data.duplicate().position(from).limit(from + n);
        data.duplicate().position(to).put(s);
    }

    public void copyTo(float[] out, int from) {
        data.duplicate().position(from).get(out);
    }

    /** Copies {@code n} floats of {@code in} from {@code from} to here at {@code to}. */
    public void copyFrom(float[] in, int from, int to, int n) {
        data.put(to, in, from, n);
    }

    /**
     * {@code out[outOff ..] = this[from .. from + n)}: the fused loops work on rows and chunks copied
     * to arrays, where the JIT vectorizes them (element by element, a direct buffer's accesses are
     * not).
     */
    void read(int from, float[] out, int outOff, int n) {
        data.get(from, out, outOff, n);
    }

    /** {@code this[to .. to + n) = in[inOff ..]}. */
    void write(int to, float[] in, int inOff, int n) {
        data.put(to, in, inOff, n);
    }

    /**
     * The memory of a row-major, contiguous float32 INDArray (a view of a {@code Floats}, or an
     * array of its own) as a buffer of exactly its elements, for fused loops over it.
     */
    static FloatBuffer of(INDArray a) {
        if (a.dataType() != DataType.FLOAT || (a.rank() > 1 && a.ordering() != 'c') || a.elementWiseStride() != 1) {
            throw new IllegalArgumentException("not a contiguous float32 array: " + a.shapeInfoToString());
        }
        int offset = Math.toIntExact(a.offset());
        int length = Math.toIntExact(a.length());
        FloatBuffer all = a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
        return all.slice(offset, length);
    }

    /** A pointer to element {@code offset}, for BLAS. */
    FloatPointer pointer(long offset) {
        return new FloatPointer(base).position(offset);
    }

    /** A row-major INDArray of the given shape over the floats from {@code offset}: shares this memory. */
    public INDArray view(int offset, long... shape) {
        long n = 1;
        long[] stride = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            stride[d] = n;
            n *= shape[d];
        }
        if (offset < 0 || offset + n > size) {
            throw new IndexOutOfBoundsException(n + " floats at " + offset + " do not fit in " + size);
        }
        return Nd4j.create(owner.data(), shape, stride, offset, 'c', DataType.FLOAT);
    }
}
