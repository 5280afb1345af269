using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace Bpfilter.Loader;

/// <summary>
/// Loads the engine and its dependencies (YamlDotNet) from the module's Dependencies folder into a load context
/// of their own, so Bpfilter imports next to any other module that loaded a different YamlDotNet, in either order.
/// PowerShell reads the cmdlets' parameter types (engine types) as soon as it loads Bpfilter.dll, so the handler
/// must be in place before that: this assembly is the manifest's first nested module, imported before the root
/// module, and it references nothing that needs resolving. Only Bpfilter.dll and this file sit in the default
/// context; the engine is not beside them, so the default context asks <see cref="Resolve"/>, which hands out the
/// isolated copy. Nothing else happens at import.
/// </summary>
public sealed class DependencyIsolation : IModuleAssemblyInitializer
{
    private const string EngineName = "Bpfilter.Engine";
    private static readonly Lazy<IsolatedLoadContext> Context = new(() =>
        new IsolatedLoadContext(Path.Combine(Path.GetDirectoryName(typeof(DependencyIsolation).Assembly.Location)!, "Dependencies")));
    private static int _installed;

    public void OnImport()
    {
        // Once per process: a second Import-Module -Force must not stack handlers.
        if (Interlocked.Exchange(ref _installed, 1) == 0) AssemblyLoadContext.Default.Resolving += Resolve;
    }

    private static Assembly? Resolve(AssemblyLoadContext defaultContext, AssemblyName name) =>
        name.Name == EngineName ? Context.Value.LoadFromAssemblyName(name) : null;

    /// <summary>Resolves every assembly that is in the Dependencies folder from there; the rest (the framework) from the default context.</summary>
    private sealed class IsolatedLoadContext(string folder) : AssemblyLoadContext("Bpfilter.Dependencies")
    {
        protected override Assembly? Load(AssemblyName name)
        {
            var path = Path.Combine(folder, name.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }
    }
}
