using System.Runtime.InteropServices;
using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Reads a BPF ring buffer map from user space, as libbpf's ring_buffer does: the consumer position page is mapped
/// read-write, the producer position page and the data (mapped twice in a row, so no record wraps) read-only. Each
/// record is an 8-byte header {u32 length | busy bit 31 | discard bit 30; u32 page offset} and its data, 8-byte aligned.
/// Reading a record moves the consumer position: entries are read once.
/// </summary>
public sealed unsafe class RingBufferReader : IDisposable
{
    private const uint Busy = 1u << 31, Discard = 1u << 30;
    private readonly BpfMap _map;
    private readonly nuint _page;
    private readonly uint _size;
    private byte* _consumer;
    private byte* _producer;

    public RingBufferReader(BpfMap map, uint size)
    {
        _map = map;
        _size = size;
        _page = (nuint)Environment.SystemPageSize;
        _consumer = Map(_page, LibC.ProtRead | LibC.ProtWrite, 0);
        try
        {
            _producer = Map(_page + 2 * (nuint)size, LibC.ProtRead, (long)_page);
        }
        catch
        {
            LibC.Munmap(_consumer, _page);
            throw;
        }
    }

    /// <summary>The records written since the last read, oldest first; a record still being written ends the read.</summary>
    public List<byte[]> Drain()
    {
        var records = new List<byte[]>();
        ulong consumer = Volatile.Read(ref *(ulong*)_consumer);
        ulong producer = Volatile.Read(ref *(ulong*)_producer);
        byte* data = _producer + _page;
        ulong mask = _size - 1;
        while (consumer < producer)
        {
            uint header = Volatile.Read(ref *(uint*)(data + (consumer & mask)));
            if ((header & Busy) != 0) break;
            uint length = header & ~(Busy | Discard);
            if ((header & Discard) == 0) records.Add(new ReadOnlySpan<byte>(data + ((consumer + 8) & mask), (int)length).ToArray());
            consumer += (length + 8 + 7) & ~7UL;
            Volatile.Write(ref *(ulong*)_consumer, consumer);
        }
        return records;
    }

    public void Dispose()
    {
        if (_consumer != null) LibC.Munmap(_consumer, _page);
        if (_producer != null) LibC.Munmap(_producer, _page + 2 * (nuint)_size);
        _consumer = _producer = null;
    }

    private byte* Map(nuint length, int protection, long offset)
    {
        var address = LibC.Mmap(null, length, protection, LibC.MapShared, _map.Fd.Value, offset);
        if (address == (void*)-1) throw new KernelException("map the log ring buffer", Marshal.GetLastPInvokeError());
        return (byte*)address;
    }
}
