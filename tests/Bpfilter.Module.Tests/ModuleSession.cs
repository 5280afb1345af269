using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace Bpfilter.Module.Tests;

/// <summary>A runspace with the built module (out/Bpfilter) imported, as a user's session would have it.</summary>
public sealed class ModuleSession : IDisposable
{
    private readonly Runspace _runspace;

    public ModuleSession()
    {
        var state = InitialSessionState.CreateDefault2();
        state.ImportPSModule(ModulePath);
        _runspace = RunspaceFactory.CreateRunspace(state);
        _runspace.Open();
    }

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Bpfilter.psd1"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Bpfilter.psd1) above the test assembly");
        }
    }

    /// <summary>The assembled module; build.ps1 Build (which Test runs first) makes it.</summary>
    public static string ModulePath
    {
        get
        {
            var path = Path.Combine(RepositoryRoot, "out", "Bpfilter", "Bpfilter.psd1");
            return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run 'dotnet pwsh ./build.ps1 Build' first");
        }
    }

    /// <summary>Runs a script; returns its output and the errors it wrote, without throwing on terminating errors.</summary>
    public (IReadOnlyList<PSObject> Output, IReadOnlyList<ErrorRecord> Errors) Run(string script)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        try
        {
            var output = ps.Invoke();
            return (output, ps.Streams.Error.ToList());
        }
        catch (RuntimeException e)
        {
            return ([], [.. ps.Streams.Error, e.ErrorRecord]);
        }
    }

    public void Dispose() => _runspace.Dispose();
}
