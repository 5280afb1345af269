using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>
/// The log verdict's side effect: when the deployment's log rate has a token, the packet record is written as one
/// <see cref="LogMaps"/> entry into the ring buffer (bpf_ringbuf_output); when it has none, nothing is written. Either
/// way the packet goes on to the next rule.
/// </summary>
internal static class LogWriter
{
    public static void Emit(Assembler asm, MapSpec ring, LimitTest rate, int id)
    {
        var skip = asm.NewLabel("log_rate_spent");
        new Condition(rate).Emit(asm, skip);
        short entry = PacketRecord.Buffer;
        asm.Call(Helper.KtimeGetBootNs);
        asm.Store(Size.DoubleWord, Register.R10, entry, Register.R0);
        asm.Store(Size.Word, Register.R10, (short)(entry + 8), id);
        CopyByte(asm, PacketRecord.Family, (short)(entry + 12));
        CopyByte(asm, PacketRecord.Protocol, (short)(entry + 13));
        CopyByte(asm, PacketRecord.TcpFlags, (short)(entry + 14));
        CopyByte(asm, PacketRecord.HasTransport, (short)(entry + 15));
        for (int i = 0; i < 4; i++)
        {
            CopyAddressWord(asm, PacketRecord.SourceAddress(i), (short)(entry + 16 + 4 * i));
            CopyAddressWord(asm, PacketRecord.DestinationAddress(i), (short)(entry + 32 + 4 * i));
        }
        PacketRecord.Load(asm, PacketRecord.SourcePort);
        asm.Store(Size.Half, Register.R10, (short)(entry + 48), Register.R0);
        PacketRecord.Load(asm, PacketRecord.DestinationPort);
        asm.Store(Size.Half, Register.R10, (short)(entry + 50), Register.R0);
        PacketRecord.Load(asm, PacketRecord.Length);
        PacketRecord.Store(asm, (short)(entry + 52), Register.R0);
        PacketRecord.Load(asm, PacketRecord.InInterface);
        PacketRecord.Store(asm, (short)(entry + 56), Register.R0);
        PacketRecord.Load(asm, PacketRecord.OutInterface);
        PacketRecord.Store(asm, (short)(entry + 60), Register.R0);
        asm.LoadMap(Register.R1, ring);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, entry);
        asm.Mov(Register.R3, LogMaps.EntrySize);
        asm.Mov(Register.R4, 0L);
        asm.Call(Helper.RingbufOutput);
        asm.Mark(skip);
    }

    private static void CopyByte(Assembler asm, short field, short to)
    {
        PacketRecord.Load(asm, field);
        asm.Store(Size.Byte, Register.R10, to, Register.R0);
    }

    private static void CopyAddressWord(Assembler asm, short field, short to)
    {
        PacketRecord.Load(asm, field);
        asm.FromBigEndian(Register.R0, 32);
        asm.Store(Size.Word, Register.R10, to, Register.R0);
    }
}
