using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The errors only the engine's API raises (or that no cmdlet can provoke on purpose), each provoked for real and
/// checked for its id and category as about_Bpfilter_Errors documents them.
/// </summary>
[Collection("kernel")]
public sealed class EngineErrorTests
{
    private static void Raises(string errorId, FailureCategory category, Action action)
    {
        var error = Assert.ThrowsAny<BpfilterException>(action);
        Assert.Equal((errorId, category), (error.ErrorId, error.Category));
    }

    private static EbpfProgram ReturnsPass()
    {
        var asm = new Assembler();
        asm.Mov(Register.R0, 2);
        asm.Exit();
        return asm.Assemble("bpft_pass", ProgramType.Xdp);
    }

    [Fact]
    public void A_program_type_the_interpreter_does_not_model_is_InterpreterUnsupported() =>
        Raises("InterpreterUnsupported", FailureCategory.NotImplemented, () => ContextLayout.For((ProgramType)1)); // BPF_PROG_TYPE_SOCKET_FILTER

    [Fact]
    public void A_context_field_the_program_type_lacks_is_InterpreterContextInvalid() =>
        Raises("InterpreterContextInvalid", FailureCategory.InvalidArgument,
            () => new EbpfInterpreter(ReturnsPass(), new Dictionary<MapSpec, InMemoryMap>()).Run(new byte[60], new Dictionary<string, ulong> { ["mark"] = 1 }));

    [Fact]
    public void A_key_an_interpreter_map_lacks_is_MapKeyNotFound() =>
        Raises("MapKeyNotFound", FailureCategory.ObjectNotFound, () => InMemoryMap.Create(new MapSpec("bpft_a", MapType.Array, 4, 16, 4)).LookupPerCpu(4));

    [Fact]
    public void A_map_spec_the_kernel_would_refuse_is_MapSpecInvalid() =>
        Raises("MapSpecInvalid", FailureCategory.InvalidArgument, () => InMemoryMap.Create(new MapSpec("bpft_h", MapType.Hash, 4, 4, 0)));

    [Fact]
    public void A_fault_in_the_interpreter_is_InterpreterFault()
    {
        var asm = new Assembler();
        asm.Exit(); // r0 is never set
        var program = asm.Assemble("bpft_fault", ProgramType.Xdp);
        Raises("InterpreterFault", FailureCategory.InvalidOperation, () => new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap>()).Run(new byte[60]));
    }

    [Fact]
    public void A_run_that_moved_no_counter_is_SimulationInconclusive()
    {
        var compiled = ChainCompiler.Compile(new Chain("INPUT", Hook.Xdp, "lo", Verdict.Accept, []));
        var counts = new (ulong, ulong)[compiled.Layout.SlotCount];
        Raises("SimulationInconclusive", FailureCategory.InvalidOperation, () => ChainSimulator.Decide(compiled, counts, counts, 2));
    }

    [Fact]
    public void A_chain_a_NIC_cannot_run_is_OffloadIncompatible() =>
        Raises("OffloadIncompatible", FailureCategory.InvalidData,
            () => OffloadProfile.Check(ChainCompiler.Compile(new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, []))));

    [Fact]
    public void A_program_the_verifier_refuses_is_VerifierRejected()
    {
        var asm = new Assembler();
        asm.Exit(); // r0 is never set: the verifier says "R0 !read_ok"
        var program = asm.Assemble("bpft_bad", ProgramType.Xdp);
        Raises("VerifierRejected", FailureCategory.InvalidOperation, () => LoadedProgram.Load(program, new Dictionary<MapSpec, BpfMap>()));
    }

    [Fact]
    public void A_system_call_failure_without_an_error_of_its_own_is_KernelCallFailed_with_the_errnos_category()
    {
        // An array map's keys are 4 bytes: the kernel answers EINVAL, which no error of its own covers.
        var error = Assert.Throws<KernelException>(() => BpfMap.Create(new MapSpec("bpft_k", MapType.Array, 8, 4, 1)));
        Assert.Equal(("KernelCallFailed", FailureCategory.DeviceError, 22), (error.ErrorId, error.Category, error.Errno));
    }

    [Theory]
    [InlineData(1, FailureCategory.PermissionDenied)]     // EPERM
    [InlineData(13, FailureCategory.PermissionDenied)]    // EACCES
    [InlineData(2, FailureCategory.ObjectNotFound)]       // ENOENT
    [InlineData(19, FailureCategory.ObjectNotFound)]      // ENODEV
    [InlineData(16, FailureCategory.ResourceBusy)]        // EBUSY
    [InlineData(17, FailureCategory.ResourceBusy)]        // EEXIST
    [InlineData(12, FailureCategory.ResourceUnavailable)] // ENOMEM
    [InlineData(28, FailureCategory.ResourceUnavailable)] // ENOSPC
    [InlineData(7, FailureCategory.ResourceUnavailable)]  // E2BIG
    [InlineData(95, FailureCategory.NotImplemented)]      // EOPNOTSUPP
    [InlineData(524, FailureCategory.NotImplemented)]     // ENOTSUPP
    [InlineData(22, FailureCategory.DeviceError)]         // EINVAL, and any other
    [InlineData(40, FailureCategory.DeviceError)]         // ELOOP
    public void KernelCallFailed_takes_the_category_about_Bpfilter_Errors_gives_its_errno(int errno, FailureCategory category) =>
        Assert.Equal(("KernelCallFailed", category), (new KernelException("a call", errno).ErrorId, new KernelException("a call", errno).Category));
}
