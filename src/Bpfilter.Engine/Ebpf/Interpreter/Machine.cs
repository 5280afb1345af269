using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>The state of one run: registers, call frames, memory regions, and the fetch-execute loop.</summary>
internal sealed partial class Machine
{
    private const int StackSize = 512, MaxCallDepth = 8, R0 = 0, R10 = 10;

    private readonly EbpfInterpreter _vm;
    private readonly Instruction[] _code;
    private readonly RegisterValue[] _regs = new RegisterValue[11];
    private readonly bool[] _init = new bool[11];
    private readonly Stack<Frame> _frames = new();
    private readonly AddressSpace _addresses = new();
    private readonly Dictionary<byte[], MemoryRegion> _valueRegions = new(ReferenceEqualityComparer.Instance);
    private readonly List<RingBufferReservation> _reservations = new();
    private readonly List<int> _path = new();
    private readonly List<string> _trace = new();
    private readonly MemoryRegion _packet;
    private const int XdpHeadroom = 256, XdpFrameSize = 4096;
    private readonly MemoryRegion _context;
    private readonly Dictionary<string, KernelObject> _kernelObjects = new();
    private readonly ConntrackModel _conntrack;
    private readonly List<KernelObject> _references = new();
    private Random? _random;
    private MemoryRegion _stack;
    private int _pc;
    private long _steps;

    private sealed record Frame(int ReturnPc, RegisterValue[] Saved, bool[] SavedInit, MemoryRegion Stack);

    public Machine(EbpfInterpreter vm, byte[] packet, IReadOnlyDictionary<string, ulong>? contextValues, ConntrackModel conntrack)
    {
        _vm = vm;
        _conntrack = conntrack;
        _code = vm.Code;
        var layout = vm.Context;
        // An XDP frame sits in a buffer with headroom in front and tailroom behind, for bpf_xdp_adjust_head and _tail.
        int headroom = layout == ContextLayout.XdpMd ? XdpHeadroom : 0;
        var buffer = layout == ContextLayout.XdpMd ? new byte[Math.Max(XdpFrameSize, headroom + packet.Length + 256)] : packet;
        if (headroom > 0) packet.CopyTo(buffer, headroom);
        _packet = new MemoryRegion($"the packet ({packet.Length} bytes)", RegionKind.Packet, buffer, headroom, packet.Length, true, _addresses.Next());
        var ctx = layout.Build(packet.Length, contextValues, vm.Options.KernelFields);
        _context = new MemoryRegion(layout.StructName, RegionKind.Context, ctx, 0, ctx.Length, true, _addresses.Next())
        {
            Layout = layout,
            Packet = _packet,
        };
        foreach (var field in layout.Fields)
        {
            if (field.Kind != ContextFieldKind.KernelObject) continue;
            var type = field.ObjectType ?? field.Name;
            _kernelObjects[field.Name] = type == "struct sk_buff" ? SocketBuffer() : new KernelObject(type, _addresses.Next(), null);
        }
        foreach (var model in vm.Options.KernelFields)
        {
            // "state.in.ifindex": the object behind ctx field "state", its pointer member "in", that object's "ifindex".
            var path = model.Path.Split('.');
            var obj = _kernelObjects[path[0]];
            for (int i = 1; i < path.Length - 1; i++)
            {
                var key = (model.Offsets[i - 1], 8);
                if (!obj.Fields.TryGetValue(key, out var next))
                {
                    var child = new KernelObject(model.Types[i - 1], _addresses.Next(), null);
                    next = new RegisterValue(child.Address, child);
                    obj.Fields[key] = next;
                }
                obj = (KernelObject)next.Tag!;
            }
            ulong value = contextValues is not null && contextValues.TryGetValue(model.Path, out var given) ? given : 0;
            obj.Fields[(model.Offsets[^1], model.Size)] = RegisterValue.Scalar(value);
        }
        _stack = NewStack();
        Set(1, new RegisterValue(_context.Address, _context));
        _regs[R10] = new RegisterValue(_stack.Address + StackSize, _stack);
        _init[R10] = true;
    }

    /// <summary>The run's struct sk_buff: its data is the packet; with a conntrack layout, its _nfct comes from the conntrack model.</summary>
    private KernelObject SocketBuffer()
    {
        var skb = new KernelObject("struct sk_buff", _addresses.Next(), _packet);
        if (_vm.Options.Conntrack is { } layout) skb.Fields[(layout.SkbNfct, 8)] = RegisterValue.Scalar(_conntrack.SkbNfct);
        return skb;
    }

    private MemoryRegion NewStack() =>
        new(_frames.Count == 0 ? "the stack" : $"the stack of call frame {_frames.Count}", RegionKind.Stack, new byte[StackSize], 0, StackSize, true, _addresses.Next());

    public ExecutionResult Execute()
    {
        long limit = _vm.Options.StepLimit;
        bool record = _vm.Options.RecordPath;
        while (true)
        {
            if (_pc >= _code.Length) Fault(_code.Length - 1, "execution fell through past the last instruction, which is not an exit or a jump");
            if (++_steps > limit) Fault($"the program executed {limit.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} instructions without exiting (a loop without end?)");
            if (record) _path.Add(_pc);
            var insn = _code[_pc];
            switch (insn.Opcode & 0x07)
            {
                case 0x07: Alu(insn, is64: true); _pc++; break;
                case 0x04: Alu(insn, is64: false); _pc++; break;
                case 0x05:
                case 0x06:
                    if (Jump(insn, is32: (insn.Opcode & 0x07) == 0x06) is { } result) return result;
                    break;
                case 0x01: LoadMemory(insn); _pc++; break;
                case 0x02:
                case 0x03: StoreMemory(insn); _pc++; break;
                default: LoadImmediate(insn); break;
            }
        }
    }

    // --- faults -------------------------------------------------------------------------------------------

    [DoesNotReturn]
    private void Fault(string reason) => Fault(_pc, reason);

    [DoesNotReturn]
    private void Fault(int index, string reason) => throw Error(index, reason);

    private InterpreterException Error(string reason) => Error(_pc, reason);

    private InterpreterException Error(int index, string reason)
    {
        return new InterpreterException(index, _vm.TextOf(index), reason);
    }

    // --- registers ----------------------------------------------------------------------------------------

    private void CheckRegister(int r)
    {
        if (r > 10) Fault($"names register r{r}; there are r0 to r10");
    }

    private RegisterValue Get(int r)
    {
        CheckRegister(r);
        if (!_init[r]) Fault($"reads r{r}, which holds no value here (the verifier says R{r} !read_ok)");
        return _regs[r];
    }

    private void Set(int r, RegisterValue value)
    {
        CheckRegister(r);
        if (r == R10) Fault("writes r10, the frame pointer, which is read-only");
        _regs[r] = value;
        _init[r] = true;
    }

    private void Set(int r, ulong scalar) => Set(r, RegisterValue.Scalar(scalar));

    [DoesNotReturn]
    private void Invalid(Instruction insn, string why) => Fault($"is not a valid instruction (opcode 0x{insn.Opcode:x2}): {why}");

    // --- ALU ----------------------------------------------------------------------------------------------

    private void Alu(Instruction insn, bool is64)
    {
        int op = insn.Opcode & 0xf0;
        bool x = (insn.Opcode & 0x08) != 0;
        int d = insn.Dst;
        CheckRegister(d);
        if (op == 0xd0)
        {
            ByteSwap(insn, is64, x);
            return;
        }
        if (op == 0x80)
        {
            if (x || insn.Src != 0 || insn.Immediate != 0 || insn.Offset != 0) Invalid(insn, "neg takes no source");
            var v = Get(d).Bits;
            Set(d, is64 ? unchecked((ulong)-(long)v) : unchecked((uint)-(int)(uint)v));
            return;
        }
        if (op > 0xc0) Invalid(insn, "unknown arithmetic operation");
        if (!x && insn.Src != 0) Invalid(insn, "an immediate operand needs src_reg 0");
        if (x && insn.Immediate != 0) Invalid(insn, "a register operand needs imm 0");
        var s = x ? Get(insn.Src) : RegisterValue.Scalar(is64 ? unchecked((ulong)(long)insn.Immediate) : (uint)insn.Immediate);

        if (op == 0xb0)
        {
            if (insn.Offset != 0)
            {
                if (!x || insn.Offset is not (8 or 16 or 32) || (!is64 && insn.Offset == 32)) Invalid(insn, $"mov with offset {insn.Offset}");
                long extended = insn.Offset switch { 8 => (sbyte)s.Bits, 16 => (short)s.Bits, _ => (int)s.Bits };
                Set(d, is64 ? (ulong)extended : (uint)(int)extended);
                return;
            }
            Set(d, is64 ? s : RegisterValue.Scalar((uint)s.Bits));
            return;
        }

        bool signed = false;
        if (insn.Offset != 0)
        {
            if (insn.Offset == 1 && op is 0x30 or 0x90) signed = true;
            else Invalid(insn, $"offset {insn.Offset} is reserved for this operation");
        }
        var dv = Get(d);
        ulong a = dv.Bits, b = s.Bits;
        if (!is64)
        {
            a = (uint)a;
            b = (uint)b;
        }
        int width = is64 ? 64 : 32;
        if (!x && op is 0x30 or 0x90 && b == 0) Fault("divides by the constant 0 (the verifier refuses it)");
        if (!x && op is 0x60 or 0x70 or 0xc0 && (uint)insn.Immediate >= width) Fault($"shifts by {insn.Immediate}, more than a {width}-bit register has");
        ulong r = op switch
        {
            0x00 => a + b,
            0x10 => a - b,
            0x20 => a * b,
            0x30 when b == 0 => 0,
            0x30 when signed => is64 ? (ulong)SignedDivide((long)a, (long)b) : (uint)(int)SignedDivide((int)(uint)a, (int)(uint)b),
            0x30 => a / b,
            0x40 => a | b,
            0x50 => a & b,
            0x60 => a << (int)(b & (ulong)(width - 1)),
            0x70 => a >> (int)(b & (ulong)(width - 1)),
            0x90 when b == 0 => a,
            0x90 when signed => is64 ? (ulong)SignedRemainder((long)a, (long)b) : (uint)(int)SignedRemainder((int)(uint)a, (int)(uint)b),
            0x90 => a % b,
            0xa0 => a ^ b,
            0xc0 => is64 ? (ulong)((long)a >> (int)(b & 63)) : (uint)((int)(uint)a >> (int)(b & 31)),
            _ => 0,
        };
        if (!is64) r = (uint)r;

        // Pointer arithmetic keeps the pointer's region; ptr - ptr is a plain distance.
        object? tag = null;
        if (is64 && op == 0x00) tag = dv.Tag is MemoryRegion && s.Tag is null ? dv.Tag : dv.Tag is null && s.Tag is MemoryRegion ? s.Tag : null;
        else if (is64 && op == 0x10) tag = dv.Tag is MemoryRegion && s.Tag is null ? dv.Tag : null;
        Set(d, new RegisterValue(r, tag));
    }

    private static long SignedDivide(long a, long b) => b == -1 ? unchecked(-a) : a / b;
    private static long SignedRemainder(long a, long b) => b == -1 ? 0 : a % b;
    private static int SignedDivide(int a, int b) => b == -1 ? unchecked(-a) : a / b;
    private static int SignedRemainder(int a, int b) => b == -1 ? 0 : a % b;

    private void ByteSwap(Instruction insn, bool is64, bool toBigEndian)
    {
        if (insn.Immediate is not (16 or 32 or 64)) Invalid(insn, $"byte swap of {insn.Immediate} bits");
        if (is64 && toBigEndian) Invalid(insn, "bswap takes no source bit");
        ulong v = Get(insn.Dst).Bits;
        bool swap = is64 || toBigEndian; // this host is little-endian: to_le only truncates
        ulong r = insn.Immediate switch
        {
            16 => swap ? BinaryPrimitives.ReverseEndianness((ushort)v) : (ushort)v,
            32 => swap ? BinaryPrimitives.ReverseEndianness((uint)v) : (uint)v,
            _ => swap ? BinaryPrimitives.ReverseEndianness(v) : v,
        };
        Set(insn.Dst, r);
    }

    // --- jumps, calls, exit -------------------------------------------------------------------------------

    private ExecutionResult? Jump(Instruction insn, bool is32)
    {
        int op = insn.Opcode & 0xf0;
        bool x = (insn.Opcode & 0x08) != 0;
        switch (op)
        {
            case 0x00:
                if (x || insn.Dst != 0 || insn.Src != 0) Invalid(insn, "goto takes no registers");
                GoTo(is32 ? insn.Immediate : insn.Offset);
                return null;
            case 0x80:
                if (is32 || x) Invalid(insn, "call is a JMP-class instruction with an immediate");
                Call(insn);
                return null;
            case 0x90:
                if (is32 || x) Invalid(insn, "exit is a JMP-class instruction");
                return Exit();
            case 0xe0 or 0xf0:
                Invalid(insn, "unknown jump operation");
                break;
        }
        if (!x && insn.Src != 0) Invalid(insn, "an immediate operand needs src_reg 0");
        var dv = Get(insn.Dst);
        ulong a = dv.Bits;
        ulong b = x ? Get(insn.Src).Bits : unchecked((ulong)(long)insn.Immediate); // the kernel sign-extends imm
        if (is32)
        {
            a = (uint)a;
            b = (uint)b;
        }
        bool taken = op switch
        {
            0x10 => a == b,
            0x20 => a > b,
            0x30 => a >= b,
            0x40 => (a & b) != 0,
            0x50 => a != b,
            0x60 => is32 ? (int)a > (int)b : (long)a > (long)b,
            0x70 => is32 ? (int)a >= (int)b : (long)a >= (long)b,
            0xa0 => a < b,
            0xb0 => a <= b,
            0xc0 => is32 ? (int)a < (int)b : (long)a < (long)b,
            _ => is32 ? (int)a <= (int)b : (long)a <= (long)b,
        };
        if (taken) GoTo(insn.Offset);
        else _pc++;
        return null;
    }

    private void GoTo(int offset)
    {
        long target = (long)_pc + 1 + offset;
        CheckTarget(target, "jumps");
        _pc = (int)target;
    }

    private void CheckTarget(long target, string verb)
    {
        if (target < 0 || target >= _code.Length) Fault($"{verb} to instruction {target}, outside the program's {_code.Length} instructions");
        if (_vm.SecondSlot[target]) Fault($"{verb} to instruction {target}, the second half of the 64-bit immediate load at {target - 1}");
    }

    private void Call(Instruction insn)
    {
        if (insn.Dst != 0 || insn.Offset != 0 && insn.Src != 2) Invalid(insn, "call uses only src_reg and imm");
        switch (insn.Src)
        {
            case 0:
                Set(R0, CallHelper(insn.Immediate));
                break;
            case 1:
                long target = (long)_pc + 1 + insn.Immediate;
                CheckTarget(target, "calls");
                if (_frames.Count + 1 >= MaxCallDepth) Fault($"calls deeper than {MaxCallDepth} frames");
                _frames.Push(new Frame(_pc + 1, _regs[6..10], _init[6..10], _stack));
                _stack = NewStack();
                _regs[R10] = new RegisterValue(_stack.Address + StackSize, _stack);
                _init[R0] = false;
                for (int r = 6; r <= 9; r++) _init[r] = false;
                _pc = (int)target;
                return;
            case 2:
                string? name = _vm.KfuncAt(_pc);
                if (name is null && _vm.Options.KfuncNames?.TryGetValue(insn.Immediate, out var byId) == true) name = byId;
                if (name is null) Fault($"calls kernel function with BTF id {insn.Immediate}, which the program does not name");
                Set(R0, CallKfunc(name));
                break;
            default:
                Invalid(insn, $"call with src_reg {insn.Src}");
                break;
        }
        for (int r = 1; r <= 5; r++) _init[r] = false; // the callee clobbers the argument registers
        _pc++;
    }

    private ExecutionResult? Exit()
    {
        var r0 = Get(R0);
        if (_frames.Count > 0)
        {
            var frame = _frames.Pop();
            Array.Copy(frame.Saved, 0, _regs, 6, 4);
            Array.Copy(frame.SavedInit, 0, _init, 6, 4);
            _stack = frame.Stack;
            _regs[R10] = new RegisterValue(_stack.Address + StackSize, _stack);
            for (int r = 1; r <= 5; r++) _init[r] = false;
            _pc = frame.ReturnPc;
            return null;
        }
        foreach (var open in _reservations)
        {
            if (!open.Done) Fault($"exits with a ring buffer record of {open.Data.Length} bytes reserved in {open.Map.Spec.Name} and neither submitted nor discarded");
        }
        if (_references.FirstOrDefault(r => !r.Released) is { } held)
            Fault($"exits holding a reference to {held.TypeName} that it never released (the verifier says: Unreleased reference)");
        if (r0.Tag is not null) Fault($"returns a pointer into {r0.Tag}, not a number");
        var final = _context.Packet!;
        return new ExecutionResult(r0.Bits, _steps, final.Bytes(0, final.Length).ToArray(), _path, _trace);
    }

    // --- 64-bit immediates --------------------------------------------------------------------------------

    private void LoadImmediate(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        if (insn.Opcode != 0x18)
        {
            if (mode is 0x20 or 0x40) Fault("is a legacy packet load (BPF_ABS/BPF_IND), which the interpreter does not run");
            Invalid(insn, "the only LD-class instruction is the 64-bit immediate load (0x18)");
        }
        if (_pc + 1 >= _code.Length) Fault("is a 64-bit immediate load without its second slot");
        var high = _code[_pc + 1];
        if (high.Opcode != 0 || high.Dst != 0 || high.Src != 0 || high.Offset != 0) Fault($"is a 64-bit immediate load whose second slot is not blank (opcode 0x{high.Opcode:x2})");
        if (insn.Offset != 0) Invalid(insn, "ld_imm64 takes no offset");
        switch (insn.Src)
        {
            case 0:
                Set(insn.Dst, (uint)insn.Immediate | ((ulong)(uint)high.Immediate << 32));
                break;
            case 1:
            case 2:
                var map = _vm.MapAt(_pc);
                if (map is null) Fault($"loads a map (pseudo src {insn.Src}) that no map reference of the program names");
                if (insn.Src == 1)
                {
                    Set(insn.Dst, new RegisterValue(_addresses.Next(), map));
                    break;
                }
                if (map.Spec.Type is not MapType.Array || map.Spec.MaxEntries < 1) Fault($"takes the address of a value of map {map.Spec.Name}, which is not an array");
                var region = ValueRegion(map, map.ProgramLookup(stackalloc byte[4], 0)!);
                uint offset = (uint)high.Immediate;
                if (offset >= region.Length) Fault($"points {offset} bytes into a value of map {map.Spec.Name}, which has {region.Length}");
                Set(insn.Dst, new RegisterValue(region.Address + offset, region));
                break;
            default:
                Fault($"is a 64-bit immediate load of pseudo kind {insn.Src}, which the interpreter does not know");
                break;
        }
        _pc += 2;
    }

    private MemoryRegion ValueRegion(InMemoryMap map, byte[] value)
    {
        if (!_valueRegions.TryGetValue(value, out var region))
        {
            region = new MemoryRegion($"a value of map {map.Spec.Name} ({value.Length} bytes)", RegionKind.MapValue, value, 0, value.Length, true, _addresses.Next());
            _valueRegions[value] = region;
        }
        return region;
    }

    // --- memory -------------------------------------------------------------------------------------------

    private static int Width(int sizeBits) => sizeBits switch { 0x00 => 4, 0x08 => 2, 0x10 => 1, _ => 8 };

    /// <summary>The region <paramref name="pointer"/> points into, and the offset of the access, after every check.</summary>
    /// <remarks>Direct stack loads and stores must be naturally aligned, as the verifier wants; helper buffers need not be.</remarks>
    private MemoryRegion Resolve(RegisterValue pointer, int register, int displacement, int size, bool write, out int offset, bool aligned = true)
    {
        switch (pointer.Tag)
        {
            case MemoryRegion region:
                long at = unchecked((long)(pointer.Bits - region.Address)) + displacement;
                string verb = write ? "writes" : "reads";
                if (at < 0 || at + size > region.Length)
                {
                    string where = region.Kind == RegionKind.Stack ? $"fp{at - StackSize}" : $"offset {at}";
                    Fault($"{verb} {size} byte{(size == 1 ? "" : "s")} at {where} of {region.Description}, which has {region.Length} bytes: out of bounds"
                        + (region.Kind == RegionKind.Packet ? " (a bounds check against data_end is missing or wrong)" : ""));
                }
                offset = (int)at;
                if (write && !region.Writable) Fault($"writes to {region.Description}, which is read-only");
                if (aligned && region.Kind == RegionKind.Stack && offset % size != 0) Fault($"misaligned stack access at fp{offset - StackSize}, size {size}");
                return region;
            case InMemoryMap map:
                Fault($"uses r{register} as a memory pointer, but it points to map {map.Spec.Name} itself: look a value up first");
                break;
            case KernelObject obj:
                Fault($"dereferences r{register}, a pointer to {obj.TypeName}, which programs may reach only through kernel functions here");
                break;
        }
        if (pointer.Bits == 0) throw Error($"dereferences r{register}, which is NULL (an unchecked lookup result?)");
        throw Error($"dereferences r{register}, which is not a pointer but the number {pointer.Bits} (0x{pointer.Bits:x})");
    }

    private static ulong Read(Span<byte> bytes) => bytes.Length switch
    {
        1 => bytes[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(bytes),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(bytes),
    };

    private static void Write(Span<byte> bytes, ulong value)
    {
        switch (bytes.Length)
        {
            case 1: bytes[0] = (byte)value; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)value); break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)value); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(bytes, value); break;
        }
    }

    private void LoadMemory(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        if (mode is not (0x60 or 0x80)) Invalid(insn, "LDX needs mode MEM or MEMSX");
        if (insn.Immediate != 0) Invalid(insn, "a load takes no immediate");
        int size = Width(insn.Opcode & 0x18);
        bool signExtend = mode == 0x80;
        if (signExtend && size == 8) Invalid(insn, "a sign-extending load of 8 bytes");
        CheckRegister(insn.Dst);
        Set(insn.Dst, Load(Get(insn.Src), insn.Src, insn.Offset, size, signExtend));
    }

    private RegisterValue Load(RegisterValue pointer, int register, int displacement, int size, bool signExtend)
    {
        if (pointer.Tag is KernelObject obj)
        {
            if (obj.Released) Fault($"reads r{register}, a {obj.TypeName} it released already");
            long at = unchecked((long)(pointer.Bits - obj.Address)) + displacement;
            if (!signExtend && obj.Fields.TryGetValue(((int)at, size), out var field)) return field;
            Fault($"reads {size} bytes at offset {at} of {obj.TypeName}, which this interpreter does not model (it models {string.Join(", ", obj.Fields.Keys.Select(k => $"{k.Size} bytes at {k.Offset}"))})");
        }
        var region = Resolve(pointer, register, displacement, size, write: false, out int offset);
        if (region.Kind == RegionKind.Context) return ContextLoad(region, offset, size, signExtend);
        if (region.Kind == RegionKind.Stack && size == 8 && region.Spills?.TryGetValue(offset, out var spilled) == true) return spilled;
        ulong value = Read(region.Bytes(offset, size));
        if (signExtend) value = size switch { 1 => (ulong)(sbyte)value, 2 => (ulong)(short)value, _ => (ulong)(int)value };
        return RegisterValue.Scalar(value);
    }

    private RegisterValue ContextLoad(MemoryRegion ctx, int offset, int size, bool signExtend)
    {
        var layout = ctx.Layout!;
        var field = layout.FieldAt(offset, size);
        if (field is null) Fault($"reads {size} bytes at offset {offset} of {layout.StructName}, which is not within one field");
        if (signExtend) Fault($"reads {field.Name} of {layout.StructName} with a sign-extending load, which the context does not allow");
        if (!field.IsPointer) return RegisterValue.Scalar(Read(ctx.Bytes(offset, size)));
        if (offset != field.Offset || size != field.Size)
            Fault($"reads {field.Name} of {layout.StructName} with {size} bytes at offset {offset}: the kernel rewrites only a {field.Size}-byte load of the whole field");
        var packet = ctx.Packet!;
        return field.Kind switch
        {
            ContextFieldKind.PacketEnd => new RegisterValue(packet.Address + (ulong)packet.Length, packet),
            ContextFieldKind.KernelObject => new RegisterValue(_kernelObjects[field.Name].Address, _kernelObjects[field.Name]),
            _ => new RegisterValue(packet.Address, packet),
        };
    }

    private void StoreMemory(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        int size = Width(insn.Opcode & 0x18);
        bool fromRegister = (insn.Opcode & 0x07) == 0x03;
        if (fromRegister && mode == 0xc0)
        {
            Atomic(insn, size);
            return;
        }
        if (mode != 0x60) Invalid(insn, "a store needs mode MEM (or ATOMIC for STX)");
        if (fromRegister && insn.Immediate != 0) Invalid(insn, "STX takes no immediate");
        if (!fromRegister && insn.Src != 0) Invalid(insn, "ST takes no source register");
        var value = fromRegister ? Get(insn.Src) : RegisterValue.Scalar(unchecked((ulong)(long)insn.Immediate));
        Store(Get(insn.Dst), insn.Dst, insn.Offset, size, value);
    }

    private void Store(RegisterValue pointer, int register, int displacement, int size, RegisterValue value)
    {
        var region = Resolve(pointer, register, displacement, size, write: true, out int offset);
        if (region.Kind == RegionKind.Context)
        {
            var layout = region.Layout!;
            var field = layout.FieldAt(offset, size);
            if (field is null || !field.Writable)
                Fault($"writes {(field is null ? $"offset {offset}" : field.Name)} of {layout.StructName}, which programs may not write");
            if (size != field.Size) Fault($"writes {field.Name} of {layout.StructName} with {size} bytes; it takes {field.Size}");
            if (value.Tag is not null) Fault($"stores a pointer into {field.Name} of {layout.StructName}");
        }
        region.Clobber(offset, size);
        Write(region.Bytes(offset, size), value.Bits);
        if (value.Tag is not null && region.Kind == RegionKind.Stack && size == 8)
            (region.Spills ??= new())[offset] = value;
    }

    private void Atomic(Instruction insn, int size)
    {
        int op = insn.Immediate;
        if (op == 0x100)
        {
            CheckRegister(insn.Dst);
            Set(insn.Dst, Load(Get(insn.Src), insn.Src, insn.Offset, size, signExtend: false));
            return;
        }
        if (op == 0x110)
        {
            Store(Get(insn.Dst), insn.Dst, insn.Offset, size, Get(insn.Src));
            return;
        }
        if (size is not (4 or 8)) Invalid(insn, "atomic operations work on 4 or 8 bytes");
        if (op is not (0x00 or 0x40 or 0x50 or 0xa0 or 0x01 or 0x41 or 0x51 or 0xa1 or 0xe1 or 0xf1)) Invalid(insn, $"unknown atomic operation 0x{op:x}");
        var pointer = Get(insn.Dst);
        var source = Get(insn.Src);
        ulong expected = op == 0xf1 ? Get(R0).Bits : 0;
        var region = Resolve(pointer, insn.Dst, insn.Offset, size, write: true, out int offset);
        if (region.Kind is not (RegionKind.Stack or RegionKind.MapValue)) Fault($"is an atomic operation on {region.Description}; only the stack and map values allow them");
        if (offset % size != 0) Fault($"is a misaligned atomic access at offset {offset} of {region.Description}");
        var bytes = region.Bytes(offset, size);
        ulong old = Read(bytes);
        ulong operand = size == 4 ? (uint)source.Bits : source.Bits;
        ulong result = (op & 0xf0) switch
        {
            0x00 => old + operand,
            0x40 => old | operand,
            0x50 => old & operand,
            0xa0 => old ^ operand,
            0xe0 => operand,
            _ => (size == 4 ? (uint)expected : expected) == old ? operand : old,
        };
        region.Clobber(offset, size);
        Write(bytes, result);
        if (op == 0xf1) Set(R0, old);
        else if ((op & 0x01) != 0) Set(insn.Src, old);
    }
}
